"""Every bad input we know of, as one table: what the user wrote, the exit code, and the one line
evaljobs answers with. Runs the real command (``evaljobs.cli.main``) against a real SQLite file,
and PostgreSQL where the case is about PostgreSQL. Exit codes: 0 ok, 1 failed, 2 usage/config,
3 partial, 75 busy (see README, Failure behaviour)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from evaljobs import cli
from evaljobs.db.engine import connect

from tests.db.test_pipeline_db import AT, load_url
from tests.dbdata import Label, Prediction

BASE = {
    "database": "{db}",
    "pushgateway": "",
    "extra": "",
    "job": {"window": "1d", "label_delay": "1d", "schedule": '"0 0 * * *"'},
    "job_extra": "",
}


@dataclass
class Case:
    """One bad input: config changes, the command's extra arguments, and what must come back."""

    name: str
    expect_code: int
    expect: str
    database: str | None = None
    pushgateway: str = ""
    extra: str = ""
    job: dict[str, str] = field(default_factory=dict)
    job_extra: str = ""
    argv: tuple[str, ...] = ("--dry-run",)
    command: str = "run"
    engine: str = "sqlite"
    data: str = "good"  # good | text_score


CASES = [
    Case("future --at", 2, "--at 2099-01-01T00:00:00Z is in the future", argv=("--dry-run", "--at", "2099-01-01T00:00:00Z")),
    Case("window overflowing a timedelta", 2, "window: invalid duration '999999999w': too long",
         job={"window": "999999999w"}),
    Case("window beyond datetime's range", 2, "window: duration 600000w is longer than 100 years",
         job={"window": "600000w"}),
    Case("label_delay beyond datetime's range", 2, "label_delay: duration 600000w is longer than 100 years",
         job={"label_delay": "600000w"}),
    Case("fractional window without a unit", 2, "window: invalid duration 1.5: give a unit", job={"window": "1.5"}),
    Case("negative window", 2, "window: invalid duration -1: must not be negative", job={"window": "-1"}),
    Case("cron that never fires", 2, "schedule '0 0 30 2 *' is not valid cron: it never fires",
         job={"schedule": '"0 0 30 2 *"'}),
    Case("cron with 6 fields", 2, "is not a 5-field cron expression", job={"schedule": '"0 0 * * * *"'}),
    Case("database port not a number", 2, "database URL 'postgresql+psycopg://postgres@127.0.0.1:99x/test' is not "
         "a valid SQLAlchemy URL", database="postgresql+psycopg://postgres@127.0.0.1:99x/test"),
    Case("database URL without ://", 2, "is not a valid SQLAlchemy URL",
         database="postgresql+psycopg//postgres@127.0.0.1/test"),
    Case("database URL with an unescaped @", 2, "unescaped '@' in its user or password",
         database="postgresql+psycopg://bob:p@ss@127.0.0.1/test"),
    Case("unknown database driver", 1, "no SQLAlchemy dialect for 'nosuchdb'", database="nosuchdb://h/x"),
    Case("missing SQLite file", 1, "does not exist", database="sqlite:///{tmp}/nope.db"),
    Case("unreachable database", 1, "cannot connect to database postgresql+psycopg://postgres@127.0.0.1:9/test",
         database="postgresql+psycopg://postgres@127.0.0.1:9/test"),
    Case("pushgateway port not a number", 2, "has an invalid port", pushgateway="http://127.0.0.1:99x"),
    Case("pushgateway URL without ://", 2, "must start with http:// or https://", pushgateway="http//127.0.0.1:9"),
    Case("pushgateway ca_file missing", 2, "ca_file '/nonexistent/ca.pem' is not a file",
         pushgateway="{url: 'https://127.0.0.1:9', ca_file: /nonexistent/ca.pem}"),
    Case("pushgateway key without certificate", 2, "key_file needs cert_file",
         pushgateway="{url: 'https://127.0.0.1:9', key_file: '{cfg}'}"),
    Case("pushgateway timeout over an hour", 2, "timeout_seconds: Input should be less than or equal to 3600",
         pushgateway="{url: 'http://127.0.0.1:9', timeout_seconds: 7200}"),
    Case("connect timeout below a second", 2, "timeouts.connect must be at least 1s", extra="timeouts: {connect: 0s}\n"),
    Case("unknown timeout", 2, "timeouts.query: is not a known setting", extra="timeouts: {query: 1m}\n"),
    Case("claim_expiry of 0", 2, "claim_expiry must be longer than 0", extra="results: {claim_expiry: 0}\n"),
    Case("--textfile into a missing directory", 2, "directory '{tmp}/missing' does not exist",
         argv=("--dry-run", "--textfile", "{tmp}/missing/m.prom")),
    Case("--openmetrics into a missing directory", 2, "directory '{tmp}/missing' does not exist", command="backfill",
         argv=("--from", "2026-01-09T00:00:00Z", "--to", "2026-01-10T00:00:00Z", "--openmetrics",
               "{tmp}/missing/h.om")),
    Case("text in score and latency on SQLite", 3, "holds 1 score value(s) that are not numbers (e.g. 'n/a')",
         data="text_score", argv=("--dry-run", "--at", AT.isoformat())),
    Case("text in a text score column on PostgreSQL", 3, "holds 1 score value(s) that are not numbers (e.g. 'n/a')",
         data="text_score", engine="postgresql", argv=("--dry-run", "--at", AT.isoformat())),
    Case("max_classes of 1", 2, "max_classes: Input should be greater than or equal to 2", job={"max_classes": "1"}),
    Case("max_classes not a number", 2, "max_classes: Input should be a valid integer", job={"max_classes": "many"}),
    Case("SQLite timestamp with an offset in the middle of the window", 1,
         "predictions.predicted_at holds 1 value(s) in the window like '2026-01-08 12:00:00+02:00'",
         data="offset_timestamp", argv=("--dry-run", "--at", AT.isoformat())),
    Case("a colon and a percent sign in column names", 0, "",
         job_extra="    columns: {score: 'sc :ore', predicted_label: 'pred%label'}\n", data="odd_names",
         argv=("--dry-run", "--at", AT.isoformat())),
]


def _load(url: str, kind: str) -> None:
    t = AT - timedelta(days=1, hours=12)
    load_url(url, [Prediction("a", "v1", t, "1", 0.9, 0.1), Prediction("b", "v1", t, "0", 0.2, 0.2),
                   Prediction("c", "v1", t, "1", 0.7, 0.3)],
             [Label("a", "1", t), Label("b", "0", t), Label("c", "0", t)])
    engine = connect(url)
    q = engine.dialect.identifier_preparer.quote_identifier
    with engine.begin() as conn:
        if kind == "text_score":
            if engine.dialect.name == "postgresql":  # a text column: the cast cannot be done in the database
                conn.execute(sa.text("ALTER TABLE predictions ALTER COLUMN score TYPE TEXT"))
            conn.execute(sa.text("UPDATE predictions SET score = 'n/a' WHERE prediction_id = 'c'"))
        if kind == "offset_timestamp":  # b is neither the earliest nor the latest prediction
            conn.execute(sa.text("UPDATE predictions SET predicted_at = '2026-01-08 12:00:00+02:00' "
                                 "WHERE prediction_id = 'b'"))
            conn.execute(sa.text("UPDATE predictions SET predicted_at = '2026-01-08 01:00:00' WHERE prediction_id = 'a'"))
            conn.execute(sa.text("UPDATE predictions SET predicted_at = '2026-01-08 18:00:00' WHERE prediction_id = 'c'"))
        if kind == "odd_names":
            conn.exec_driver_sql(f"ALTER TABLE predictions RENAME COLUMN score TO {q('sc :ore')}")
            conn.exec_driver_sql(f"ALTER TABLE predictions RENAME COLUMN predicted_label TO {q('pred%label')}")
    engine.dispose()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, capsys, request) -> None:
    url = (request.getfixturevalue("postgres_url") if case.engine == "postgresql"
           else request.getfixturevalue("sqlite_url"))
    _load(url, case.data)
    config = tmp_path / "schedules.yaml"

    def fill(text: str) -> str:
        return text.replace("{tmp}", str(tmp_path)).replace("{cfg}", str(config))

    job = {**BASE["job"], **case.job}
    text = f"database: {fill(case.database) if case.database else url}\n"
    if case.pushgateway:
        text += f"pushgateway: {fill(case.pushgateway)}\n"
    text += case.extra
    text += ("jobs:\n  - name: j\n    model: m\n    task: binary\n    positive_label: 1\n"
             + "".join(f"    {key}: {value}\n" for key, value in job.items()) + case.job_extra)
    config.write_text(text)
    argv = [case.command, "j", "--config", str(config), *(fill(a) for a in case.argv)]
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == case.expect_code, err
    assert "Traceback" not in err and "internal error" not in err
    problem_lines = [line for line in err.splitlines() if line.startswith(("evaljobs: error", "evaljobs: warning"))]
    if case.expect_code == 0:
        assert problem_lines == [], err
        return
    assert all(line.startswith("evaljobs: ") for line in err.splitlines()), err
    assert any(fill(case.expect) in line for line in problem_lines), err
    if case.expect_code in (1, 2):
        assert len(problem_lines) == 1, err
