"""A known password in every URL form -- valid, mistyped, percent-encoded -- and in every place
a credential goes (database, results.database, pushgateway URL and password field); then every
command's stdout and stderr, every file it wrote and every row of the results store are searched
for it, decoded and encoded. Real processes against real PostgreSQL and a real Pushgateway (which
accepts and ignores basic auth)."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from evaljobs.db.engine import connect
from evaljobs.ops.store import ResultsStore

from tests.db.test_pipeline_db import AT, load_url
from tests.dbdata import Label, Prediction

pytestmark = pytest.mark.service

PASSWORD = "Lk9#Pw@d/7"  # has '@', '/' and '#': every character a URL parser trips on
ENCODED = "Lk9%23Pw%40d%2F7"
FRAGMENTS = ("Lk9", "Pw@d", "Pw%40d", "d/7", "d%2F7")


def url_forms(base: str) -> dict[str, str]:
    """``base`` (scheme://host:port/path, no user) with the password in every form we know."""
    scheme, rest = base.split("://", 1)
    return {
        "encoded": f"{scheme}://postgres:{ENCODED}@{rest}",
        "raw": f"{scheme}://postgres:{PASSWORD}@{rest}",
        "no_slashes": f"{scheme}//postgres:{ENCODED}@{rest}",
        "one_slash": f"{scheme}:/postgres:{ENCODED}@{rest}",
        "raw_no_slashes": f"{scheme}//postgres:{PASSWORD}@{rest}",
    }


def leaks(text: str) -> list[str]:
    return [fragment for fragment in FRAGMENTS if fragment in text]


def evaljobs(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evaljobs", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def data(postgres_url: str) -> str:
    t = AT - timedelta(days=1, hours=12)
    load_url(postgres_url, [Prediction("a", "v1", t, "1", 0.9), Prediction("b", "v1", t, "0", 0.2)],
             [Label("a", "1", t), Label("b", "0", t)])
    return postgres_url


def _with_password(url: str, form: str) -> str:
    parsed = sa.engine.make_url(url)
    base = f"{parsed.drivername}://{parsed.host}:{parsed.port or 5432}/{parsed.database}"
    query = parsed.render_as_string(hide_password=False).partition("?")[2]
    return url_forms(base)[form] + (f"?{query}" if query else "")


WHERE = ["database", "results.database", "pushgateway.url", "pushgateway.password"]
FORMS = ["encoded", "raw", "no_slashes", "one_slash", "raw_no_slashes"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("where", WHERE)
def test_a_password_never_leaks(tmp_path: Path, data: str, pushgateway, where: str, form: str) -> None:
    database = _with_password(data, form) if where == "database" else data
    results = _with_password(data, form) if where == "results.database" else None
    gateway_host = pushgateway.url.split("://", 1)[1]
    gateway = {"encoded": f"http://pusher:{ENCODED}@{gateway_host}", "raw": f"http://pusher:{PASSWORD}@{gateway_host}",
               "no_slashes": f"http//pusher:{ENCODED}@{gateway_host}",
               "one_slash": f"http:/pusher:{ENCODED}@{gateway_host}",
               "raw_no_slashes": f"http//pusher:{PASSWORD}@{gateway_host}"}[form] \
        if where == "pushgateway.url" else pushgateway.url
    config = tmp_path / "schedules.yaml"
    text = f"database: '{database}'\npushgateway:\n  url: '{gateway}'\n"
    if where == "pushgateway.password":
        text += f"  username: pusher\n  password: '{PASSWORD}'\n"
    if results:
        text += f"results:\n  database: '{results}'\n"
    text += ("jobs:\n  - name: j\n    model: m\n    task: binary\n    positive_label: 1\n    window: 1d\n"
             "    label_delay: 1d\n    schedule: \"0 0 * * *\"\n")
    config.write_text(text)
    out = tmp_path / "out"
    out.mkdir()
    runs = [
        evaljobs("-v", "run", "j", "--config", str(config), "--at", AT.isoformat(), "--textfile", str(out / "m.prom"),
                 "--output", "json"),
        evaljobs("backfill", "j", "--config", str(config), "--from", (AT - timedelta(days=1)).isoformat(),
                 "--to", AT.isoformat(), "--openmetrics", str(out / "h.om")),
    ]
    if form == "encoded":  # the valid form reaches every code path: tracebacks and the scheduler's logs too
        runs += [evaljobs("--debug", "run", "j", "--config", str(config), "--at", AT.isoformat()),
                 evaljobs("--debug", "schedule", "--catch-up-only", "--config", str(config))]
    assert any(run.returncode == 0 for run in runs) or form != "encoded", [r.stderr for r in runs]
    for run in runs:
        assert leaks(run.stdout + run.stderr) == [], run.stdout + run.stderr
    for path in out.iterdir():
        assert leaks(path.read_text()) == [], path
    engine = connect(data)
    try:
        for row in ResultsStore(engine).rows():
            assert leaks(" ".join(str(value) for value in row.values())) == [], row
    finally:
        engine.dispose()
