"""Defects A-K of issue 11, each reproduced as the issue wrote it, against real SQLite,
PostgreSQL and a real Pushgateway (plus a small fake gateway that records what it is sent)."""

from __future__ import annotations

import http.server
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from evaljobs import cli
from evaljobs.config import load_config
from evaljobs.ops.runs import run_once
from evaljobs.config import Pushgateway
from evaljobs.db.engine import connect
from evaljobs.errors import redact
from evaljobs.ops.store import ResultsStore
from evaljobs.sinks.pushgateway import PushgatewaySink
from evaljobs.windows import cron_trigger, fire_times, plan_window

from tests.conftest import samples
from tests.db.test_pipeline_db import AT, evaluate, load_url, make_job
from tests.dbdata import Label, Prediction, terminate_running_query
from tests.ops.test_run_store import store_rows
from tests.test_cli import config_file, loaded_sqlite  # noqa: F401 - a fixture

UTC = timezone.utc
SECRET = "Zq7S3cret"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def gateway_window_end(gateway_url: str) -> set[float]:
    return {s.value for s in samples(f"{gateway_url}/metrics", "evaljobs_window_end_timestamp_seconds")}


# ---- A: a future --at silences the job ----------------------------------------------------------
def test_a_future_at_is_refused(capsys, tmp_path, loaded_sqlite, pushgateway) -> None:
    config = config_file(tmp_path, loaded_sqlite, pushgateway.url)
    code, _, err = run(capsys, "run", "j", "--config", str(config), "--at", "2099-01-01T00:00:00Z")
    assert code == 2, err
    assert err.count("\n") == 1 and "--at 2099-01-01T00:00:00Z is in the future" in err
    assert store_rows(loaded_sqlite) == []


def test_a_a_stored_future_window_does_not_silence_later_runs(capsys, tmp_path, loaded_sqlite, pushgateway) -> None:
    """A store that already holds a future window (a wrong clock, an older evaljobs) keeps pushing."""
    config = config_file(tmp_path, loaded_sqlite, pushgateway.url)
    future = datetime(2099, 1, 1, tzinfo=UTC)
    loaded = load_config(config)
    sink = PushgatewaySink.from_config(loaded.pushgateway)
    assert run_once(loaded, loaded.jobs, future, sink=sink, now=future).exit_code == 0  # a clock in 2099
    code, _, err = run(capsys, "run", "j", "--config", str(config), "--at", AT.isoformat())
    assert code == 0, err
    window = plan_window(AT, timedelta(days=1), timedelta(days=1))
    assert gateway_window_end(pushgateway.url) == {window.end.timestamp()}
    job_rows = {r["evaluated_at"]: r["push_status"] for r in store_rows(loaded_sqlite) if r["row_kind"] == "job"}
    assert job_rows[AT] == "pushed"


# ---- B/C: a dead run's claim, and retries that exit 0 having done nothing ----------------------
def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_b_a_claim_of_a_dead_process_on_this_host_is_taken_over(capsys, tmp_path, loaded_sqlite) -> None:
    config = config_file(tmp_path, loaded_sqlite, "http://127.0.0.1:9")
    engine = connect(loaded_sqlite)
    window = plan_window(AT, timedelta(days=1), timedelta(days=1))
    held = ResultsStore(engine).claim("j", "m", window, "run", datetime.now(UTC), replace=True)
    dead = f"{socket.gethostname()}:{_dead_pid()}:deadbeef"
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE evaljobs_results SET claimed_by = :dead WHERE claimed_by = :token"),
                     {"dead": dead, "token": held.token})
    engine.dispose()
    code, _, err = run(capsys, "run", "j", "--config", str(config), "--at", AT.isoformat(),
                       "--textfile", str(tmp_path / "m.prom"))
    assert "took over" in err and dead in err
    assert code == 1  # the unreachable gateway; the window itself was evaluated and stored
    [job_row] = [r for r in store_rows(loaded_sqlite) if r["row_kind"] == "job"]
    assert job_row["status"] == "ok" and job_row["claimed_by"] is None and job_row["push_status"] == "pending"


def test_b_a_window_held_by_a_live_process_is_not_success(capsys, tmp_path, loaded_sqlite) -> None:
    config = config_file(tmp_path, loaded_sqlite, "http://127.0.0.1:9")
    engine = connect(loaded_sqlite)
    held = ResultsStore(engine).claim("j", "m", plan_window(AT, timedelta(days=1), timedelta(days=1)), "schedule",
                                      datetime.now(UTC), replace=False)
    engine.dispose()
    code, _, err = run(capsys, "run", "j", "--config", str(config), "--at", AT.isoformat())
    assert code == 75, err  # EX_TEMPFAIL: try again later
    assert f"being evaluated by {held.token}" in err


def slow_source(url: str, seconds: float) -> None:
    """Reference data, and a view over the predictions whose every read sleeps in PostgreSQL."""
    t = AT - timedelta(days=1, hours=12)
    load_url(url, [Prediction("a", "v1", t, "1", 0.9), Prediction("b", "v1", t, "0", 0.3)],
             [Label("a", "1", t), Label("b", "0", t)])
    engine = connect(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE VIEW slow_predictions AS SELECT p.* FROM predictions p, "
                             f"(SELECT pg_sleep({seconds})) s"))
    engine.dispose()


SLOW_TABLES = "    tables: {predictions: slow_predictions}\n"


def _start(config: Path, tmp_path: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"run-{time.monotonic_ns()}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "evaljobs", "run", "j", "--config", str(config),
                                    "--at", AT.isoformat(), *args], stdout=out, stderr=subprocess.STDOUT)
    return process, log


def _wait_running(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r["status"] == "running" for r in store_rows(url)):
            time.sleep(0.5)  # into the evaluation's query
            return
        time.sleep(0.05)
    raise AssertionError("the run never claimed its window")


def test_b_sigterm_releases_the_claim_and_the_retry_runs(tmp_path, postgres_url, pushgateway) -> None:
    slow_source(postgres_url, 30)
    config = config_file(tmp_path, postgres_url, pushgateway.url, extra=SLOW_TABLES)
    process, log = _start(config, tmp_path)
    _wait_running(postgres_url)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 143
    lines = log.read_text().splitlines()
    assert lines == ["evaljobs: terminated by SIGTERM; the window's claim was released"], lines
    assert store_rows(postgres_url) == []  # the claim of a window without an earlier result is gone
    fast = config_file(tmp_path, postgres_url, pushgateway.url)
    assert cli.main(["run", "j", "--config", str(fast), "--at", AT.isoformat()]) == 0


def test_c_connection_killed_mid_query_names_the_query(tmp_path, postgres_url, pushgateway) -> None:
    slow_source(postgres_url, 30)
    config = config_file(tmp_path, postgres_url, pushgateway.url, extra=SLOW_TABLES)
    process, log = _start(config, tmp_path)
    _wait_running(postgres_url)
    assert terminate_running_query(postgres_url)
    assert process.wait(timeout=20) == 1
    text = log.read_text()
    assert text.count("\n") == 1, text
    assert "job 'j': query" in text and "recording a failed run" not in text
    [row] = store_rows(postgres_url)
    assert row["status"] == "failed" and row["claimed_by"] is None
    fast = config_file(tmp_path, postgres_url, pushgateway.url)
    assert cli.main(["run", "j", "--config", str(fast), "--at", AT.isoformat()]) == 0


def test_c_a_failing_store_write_fails_the_run_and_frees_the_window(capsys, tmp_path, postgres_url,
                                                                     pushgateway) -> None:
    t = AT - timedelta(days=1, hours=12)
    long_version = "v" * 250  # longer than the store's former VARCHAR(200)
    load_url(postgres_url, [Prediction("a", "v1", t, "1", 0.9)], [Label("a", "1", t)])
    engine = connect(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE predictions ALTER COLUMN model_version TYPE TEXT"))
        conn.execute(sa.text("UPDATE predictions SET model_version = :v"), {"v": long_version})
    engine.dispose()
    config = config_file(tmp_path, postgres_url, pushgateway.url)
    code, _, err = run(capsys, "run", "j", "--config", str(config), "--at", AT.isoformat())
    assert code == 0, err
    assert {r["model_version"] for r in store_rows(postgres_url)} == {"", long_version}
    # Any other failing write: the run fails naming the write, and the window is free again.
    engine = connect(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                             "$$ BEGIN RAISE EXCEPTION 'disk full (simulated)'; END $$"))
        conn.execute(sa.text("CREATE TRIGGER refuse BEFORE INSERT ON evaljobs_results FOR EACH ROW "
                             "WHEN (NEW.row_kind = 'version') EXECUTE FUNCTION refuse()"))
    code, _, err = run(capsys, "run", "j", "--config", str(config), "--at", AT.isoformat())
    assert code == 1
    assert err.count("\n") == 1 and "results store: writing a result failed" in err and "disk full" in err
    [job_row] = [r for r in store_rows(postgres_url) if r["row_kind"] == "job"]
    assert job_row["claimed_by"] is None and job_row["status"] == "failed"
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER refuse ON evaljobs_results"))
    engine.dispose()
    code, _, err = run(capsys, "run", "j", "--config", str(config), "--at", AT.isoformat())
    assert code == 0, err


# ---- D: passwords in mistyped URLs ---------------------------------------------------------------
MISTYPED = [
    f"postgresql+psycopg//postgres:{SECRET}@127.0.0.1/test",
    f"http//u:{SECRET}@h",
    f"http:/u:{SECRET}@h",
    f"http://u:{SECRET[:4]}/{SECRET[4:]}@h:1",
    f"postgresql://bob:{SECRET}@x@db/ml",
    f"postgresql://bob:{SECRET}x:y@db/ml",
]


@pytest.mark.parametrize("text", MISTYPED)
def test_d_redaction_does_not_depend_on_url_parsing(text) -> None:
    hidden = redact(f"database URL {text!r} is bad")
    assert SECRET[:4] not in hidden and SECRET[4:] not in hidden, hidden


@pytest.mark.parametrize("field", ["database", "pushgateway"])
@pytest.mark.parametrize("text", MISTYPED)
def test_d_mistyped_urls_in_the_config_never_print_the_password(capsys, tmp_path, loaded_sqlite, field, text) -> None:
    database = text if field == "database" else loaded_sqlite
    config = config_file(tmp_path, database, text if field == "pushgateway" else "http://127.0.0.1:9")
    code, out, err = run(capsys, "--debug", "run", "j", "--config", str(config), "--at", AT.isoformat())
    assert code in (1, 2)
    assert SECRET[:4] not in out + err and SECRET[4:] not in out + err, err


# ---- E: SQLite text in score or latency_seconds --------------------------------------------------
def test_e_sqlite_text_score_and_latency_are_reported_not_read_as_zero(sqlite_url) -> None:
    job = make_job()
    t = plan_window(AT, job.window, job.label_delay).start
    load_url(sqlite_url, [Prediction("a", "v1", t, "1", 0.9, 0.2), Prediction("b", "v1", t, "0", 0.2, 0.3),
                          Prediction("c", "v1", t, "1", 0.7, 0.1)],
             [Label("a", "1", t), Label("b", "0", t), Label("c", "0", t)])
    engine = connect(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE predictions SET score = 'n/a', latency_seconds = 'slow' WHERE prediction_id = 'c'"))
    engine.dispose()
    result = evaluate(sqlite_url, job)
    [v] = result.versions
    assert v.scores.scored == 2
    assert v.scores.roc_auc == 1.0  # from a and b only: the text score is not a 0
    assert v.latency.count == 2 and v.latency.cumulative_counts[0] == 0  # 'slow' is not in the le=0.005 bucket
    assert result.partial
    problems = " | ".join(map(str, result.problems))
    assert "1 score value(s) that are not numbers (e.g. 'n/a')" in problems
    assert "1 latency_seconds value(s) that are not numbers (e.g. 'slow')" in problems


# ---- F: an older window pushed over a newer one --------------------------------------------------
def test_f_an_older_window_is_not_pushed_over_a_newer_one_after_a_backfill(capsys, tmp_path, loaded_sqlite,
                                                                         pushgateway) -> None:
    config = config_file(tmp_path, loaded_sqlite, pushgateway.url)
    t2, t3 = AT - timedelta(days=1), AT
    assert cli.main(["run", "j", "--config", str(config), "--at", t3.isoformat()]) == 0
    newest = gateway_window_end(pushgateway.url)
    assert cli.main(["backfill", "j", "--config", str(config), "--from", t3.isoformat(),
                     "--to", (t3 + timedelta(hours=1)).isoformat()]) == 0
    code, _, err = run(capsys, "run", "j", "--config", str(config), "--at", t2.isoformat())
    assert code == 0, err
    assert gateway_window_end(pushgateway.url) == newest


# ---- G: percent-encoded Pushgateway credentials --------------------------------------------------
class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_PUT(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).seen.append(self.headers.get("Authorization", ""))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recording_gateway() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_g_percent_encoded_gateway_credentials_are_decoded(capsys, tmp_path, loaded_sqlite,
                                                           recording_gateway) -> None:
    import base64

    address, seen = recording_gateway
    sink = PushgatewaySink.from_config(Pushgateway(url=f"http://gw%40user:p%40ss%3A1@{address}"))
    assert (sink.username, sink.password) == ("gw@user", "p@ss:1")
    config = config_file(tmp_path, loaded_sqlite, f"http://gw%40user:p%40ss%3A1@{address}")
    code, out, err = run(capsys, "run", "j", "--config", str(config), "--at", AT.isoformat())
    assert code == 0, err
    assert seen and set(seen) == {"Basic " + base64.b64encode(b"gw@user:p@ss:1").decode()}
    assert "p%40ss" not in out + err and "p@ss" not in out + err


# ---- H: cron expressions that never fire, or fire rarely ----------------------------------------
@pytest.mark.parametrize("schedule", ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 2-4/2 *"])
def test_h_a_cron_that_never_fires_is_a_config_error(capsys, tmp_path, loaded_sqlite, schedule) -> None:
    config = config_file(tmp_path, loaded_sqlite)
    config.write_text(config.read_text().replace('"0 0 * * *"', f'"{schedule}"'))
    code, _, err = run(capsys, "run", "j", "--config", str(config), "--dry-run")
    assert code == 2, err
    assert err.count("\n") == 1 and "never fires" in err


def test_h_a_day_that_never_occurs_is_dropped_from_a_day_or_weekday_cron() -> None:
    """``0 0 31 4 1``: April 31st never comes, so crontab(5) fires on April's Mondays only; the
    impossible half used to make APScheduler search for years on every fire-time lookup."""
    trigger = cron_trigger("0 0 31 4 1")
    assert type(trigger).__name__ == "CronTrigger"
    april = list(fire_times("0 0 31 4 1", datetime(2027, 4, 1, tzinfo=UTC), datetime(2027, 5, 1, tzinfo=UTC)))
    assert [d.day for d in april] == [5, 12, 19, 26]
    # A day that occurs in one month of the list keeps the OR.
    assert type(cron_trigger("0 0 31 4,5 1")).__name__ == "OrTrigger"


# ---- I: overflowing durations and ports ----------------------------------------------------------
@pytest.mark.parametrize("setting, value, message", [
    ("window", "999999999w", "window: invalid duration '999999999w'"),
    ("window", "600000w", "window: duration 600000w is longer than 100 years"),
    ("label_delay", "600000w", "label_delay: duration 600000w is longer than 100 years"),
])
def test_i_overflowing_durations_are_config_errors(capsys, tmp_path, loaded_sqlite, setting, value, message) -> None:
    config = config_file(tmp_path, loaded_sqlite)
    text = config.read_text()
    text = text.replace("window: 1d", f"window: {value}") if setting == "window" else \
        text.replace("label_delay: 1d", f"label_delay: {value}")
    config.write_text(text)
    code, _, err = run(capsys, "run", "j", "--config", str(config), "--dry-run")
    assert code == 2, err
    assert err.count("\n") == 1 and message in err


@pytest.mark.parametrize("field", ["database", "pushgateway"])
def test_i_a_bad_port_is_a_config_error(capsys, tmp_path, loaded_sqlite, field) -> None:
    bad = "postgresql+psycopg://postgres@127.0.0.1:99x/test" if field == "database" else "http://127.0.0.1:99x"
    config = config_file(tmp_path, bad if field == "database" else loaded_sqlite,
                         bad if field == "pushgateway" else "http://127.0.0.1:9")
    code, _, err = run(capsys, "run", "j", "--config", str(config), "--dry-run")
    assert code == 2, err
    assert err.count("\n") == 1 and "port" in err and "internal error" not in err


# ---- J: odd identifiers --------------------------------------------------------------------------
def test_j_colons_and_percent_signs_in_column_names(db_url) -> None:
    job = make_job(columns={"score": "sc :ore", "predicted_label": "pred%label"})
    t = plan_window(AT, job.window, job.label_delay).start
    load_url(db_url, [Prediction("a", "v1", t, "1", 0.9), Prediction("b", "v1", t, "0", 0.2)],
             [Label("a", "1", t), Label("b", "0", t)])
    engine = connect(db_url)
    q = engine.dialect.identifier_preparer.quote_identifier
    with engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE predictions RENAME COLUMN score TO {q('sc :ore')}")
        conn.exec_driver_sql(f"ALTER TABLE predictions RENAME COLUMN predicted_label TO {q('pred%label')}")
    engine.dispose()
    result = evaluate(db_url, job)
    [v] = result.versions
    assert v.metrics.accuracy == 1.0 and v.scores.roc_auc == 1.0 and v.scores.scored == 2


# ---- K: messages ---------------------------------------------------------------------------------
def test_k_a_newline_in_a_class_label_stays_on_one_warning_line(capsys, tmp_path, sqlite_url) -> None:
    """A class label holding a line break ('x\\ny') reaches a warning: positive_label '1' occurs in
    no label or prediction, and that warning lists the classes as stored."""
    t = AT - timedelta(days=1, hours=12)
    load_url(sqlite_url, [Prediction("a", "v1", t, "x\ny", 0.9), Prediction("b", "v1", t, "0", 0.2)],
             [Label("a", "x\ny", t), Label("b", "0", t)])
    config = config_file(tmp_path, sqlite_url)
    code, out, err = run(capsys, "run", "j", "--config", str(config), "--at", AT.isoformat(), "--dry-run")
    assert code == 3, err  # partial: the score metrics were not computed
    [warning] = [line for line in err.splitlines() if "warning" in line]
    assert "positive_label '1' occurs in no label or prediction (classes: 0, x\\ny)" in warning, err
    assert err.count("\n") == 1 and err.startswith("evaljobs: warning: "), err


class _Refuser(http.server.BaseHTTPRequestHandler):
    status = 401

    def do_PUT(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(b"Unauthorized\n")

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("status, hint", [(401, "pushgateway.username and pushgateway.password"),
                                          (403, "pushgateway.username and pushgateway.password"),
                                          (404, "pushgateway.url"),
                                          (503, "gateway's log")])
def test_k_gateway_refusals_get_a_hint_for_their_status(capsys, tmp_path, loaded_sqlite, status, hint) -> None:
    handler = type("Refuser", (_Refuser,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = config_file(tmp_path, loaded_sqlite, f"http://127.0.0.1:{server.server_address[1]}")
        code, _, err = run(capsys, "run", "j", "--config", str(config), "--at", AT.isoformat())
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1
    assert f"HTTP {status}" in err and hint in err and "another type" not in err


def test_k_a_results_database_outage_names_results_database(capsys, tmp_path, loaded_sqlite) -> None:
    config = config_file(tmp_path, loaded_sqlite, "http://127.0.0.1:9",
                         extra="results:\n  database: postgresql+psycopg://postgres@127.0.0.1:9/none\n")
    code, _, err = run(capsys, "run", "j", "--config", str(config), "--at", AT.isoformat())
    assert code == 1
    assert "check 'results.database:'" in err, err
