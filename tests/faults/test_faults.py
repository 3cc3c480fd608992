"""Fault injection: real evaljobs processes against real PostgreSQL and Pushgateway, and small
fake servers (tests/faults/fakes.py). After each fault the test checks the exit code, the one-line
message, the stored rows, the claims and what the gateway holds, and that the next run recovers
with nothing lost. Timeouts are short here (1-2 s) to keep the suite quick; every wait is bounded.

The README's "Failure behaviour" table names these tests.
"""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from evaljobs.db.engine import connect
from evaljobs.windows import latest_fire_time, plan_window

from tests.conftest import samples
from tests.db.test_pipeline_db import AT, load_url
from tests.dbdata import Label, Prediction, terminate_running_query
from tests.ops.test_run_store import store_rows
from tests.faults.fakes import FakeGateway, HungServer, TcpProxy, private_ca

pytestmark = pytest.mark.service

WINDOW = plan_window(AT, timedelta(days=1), timedelta(days=1))


def load_data(url: str, slow_seconds: float | None = None) -> None:
    t = AT - timedelta(days=1, hours=12)
    load_url(url, [Prediction("a", "v1", t, "1", 0.9), Prediction("b", "v1", t, "0", 0.3),
                   Prediction("c", "v2", t, "1", 0.6)],
             [Label("a", "1", t), Label("b", "1", t)])
    if slow_seconds is not None:
        engine = connect(url)
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE VIEW slow_predictions AS SELECT p.* FROM predictions p, "
                                 f"(SELECT pg_sleep({slow_seconds})) s"))
        engine.dispose()


def write_config(path: Path, database: str, gateway: str | None = None, gateway_extra: str = "",
                 extra: str = "", slow: bool = False, results: str | None = None) -> Path:
    text = f"database: {database}\n"
    if gateway:
        text += f"pushgateway:\n  url: {gateway}\n  timeout_seconds: 1\n{gateway_extra}"
    if results:
        text += f"results:\n  database: {results}\n"
    text += extra
    text += ("jobs:\n  - name: j\n    model: m\n    task: binary\n    positive_label: 1\n    window: 1d\n"
             "    label_delay: 1d\n    schedule: \"0 0 * * *\"\n")
    if slow:
        text += "    tables: {predictions: slow_predictions}\n"
    path.write_text(text)
    return path


def evaljobs(config: Path, *args: str, timeout: float = 60, at: bool = True) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-m", "evaljobs", "run", "j", "--config", str(config),
                           *(["--at", AT.isoformat()] if at else []), *args],
                          capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def start(config: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"run-{time.monotonic_ns()}.err"
    with open(log, "wb") as err:
        process = subprocess.Popen([sys.executable, "-m", "evaljobs", "run", "j", "--config", str(config),
                                    "--at", AT.isoformat()], stdout=subprocess.DEVNULL, stderr=err)
    return process, log


rows = store_rows


def job_row(url: str) -> dict | None:
    found = [r for r in rows(url) if r["row_kind"] == "job"]
    return found[0] if found else None


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def wait_until(predicate, timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def assert_recovers(tmp_path: Path, url: str, gateway_url: str) -> None:
    """The next run, against a working gateway, exits 0 and the gateway holds exactly the stored values."""
    config = write_config(tmp_path / "recover.yaml", url, gateway_url)
    code, _, err = evaljobs(config)
    assert code == 0, err
    stored = {r["model_version"]: r for r in rows(url)}
    assert set(stored) == {"", "v1", "v2"}
    assert all(r["push_status"] == "pushed" and r["claimed_by"] is None for r in stored.values())
    accuracy = {s.labels["model_version"]: s.value for s in samples(f"{gateway_url}/metrics", "model_accuracy_ratio")}
    assert accuracy == {"v1": 0.5}
    ends = {s.value for s in samples(f"{gateway_url}/metrics", "evaljobs_window_end_timestamp_seconds")}
    assert ends == {WINDOW.end.timestamp()}


# ---- the gateway ---------------------------------------------------------------------------------
GATEWAY_FAULTS = {
    "refused": (dict(), "cannot reach Pushgateway"),
    "slow": (dict(delay=5), "no complete answer within 1s"),
    "trickling": (dict(trickle=0.05), "no complete answer within 1s"),
    "http_401": (dict(status=401), "check pushgateway.username and pushgateway.password"),
    "http_500": (dict(status=500), "the gateway failed"),
}
# (Every status's hint, 400/401/403/404/503, is checked in-process by tests/ops/test_defects.py.)


@pytest.mark.parametrize("fault", list(GATEWAY_FAULTS))
def test_gateway_fault_keeps_the_result_pending_and_the_next_run_pushes_it(tmp_path, postgres_url, pushgateway,
                                                                          fault) -> None:
    behaviour, message = GATEWAY_FAULTS[fault]
    load_data(postgres_url)
    with FakeGateway(**behaviour) as fake:
        url = "http://127.0.0.1:9" if fault == "refused" else fake.url
        config = write_config(tmp_path / "c.yaml", postgres_url, url)
        started = time.monotonic()
        code, out, err = evaljobs(config)
        elapsed = time.monotonic() - started
    assert code == 1
    line = one_line(err)
    assert line.startswith("evaljobs: error: ") and message in line
    assert "will be pushed at its next run" in line
    assert "m/v1" in out  # the numbers are printed before the push
    assert elapsed < 30  # bounded: one 1 s deadline per push, not a read timeout per trickled byte
    assert {r["push_status"] for r in rows(postgres_url)} == {"pending"}
    assert job_row(postgres_url)["status"] == "ok" and job_row(postgres_url)["claimed_by"] is None
    assert_recovers(tmp_path, postgres_url, pushgateway.url)


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> dict[str, Path]:
    return private_ca(tmp_path_factory.mktemp("ca"))


@pytest.mark.parametrize("tls, outcome", [("ca_file", 0), ("system_trust", 1), ("insecure_skip_verify", 0)])
def test_tls_gateway_with_a_private_ca_and_basic_auth(tmp_path, postgres_url, ca, tls, outcome) -> None:
    load_data(postgres_url)
    auth = "Basic " + base64.b64encode(b"pusher:p@ss word").decode()
    with FakeGateway(required_auth=auth, certificate=(ca["cert"], ca["key"])) as fake:
        password = "wrong" if tls == "wrong_password" else "p%40ss%20word"
        url = fake.url.replace("https://", f"https://pusher:{password}@")
        extra = {"ca_file": f"  ca_file: {ca['ca']}\n", "insecure_skip_verify": "  insecure_skip_verify: true\n",
                 "wrong_password": f"  ca_file: {ca['ca']}\n", "system_trust": ""}[tls]
        config = write_config(tmp_path / "c.yaml", postgres_url, url, gateway_extra=extra)
        code, out, err = evaljobs(config)
        accepted = list(fake.accepted)
    assert code == outcome, err
    assert "p@ss" not in out + err and "p%40ss" not in out + err and "wrong" not in err
    if outcome == 0:
        assert len(accepted) == 3 and {r["push_status"] for r in rows(postgres_url)} == {"pushed"}
    else:
        line = one_line(err)
        assert "certificate verify failed" in line, line
        assert {r["push_status"] for r in rows(postgres_url)} == {"pending"}


# ---- the database --------------------------------------------------------------------------------
def _port_of(url: str) -> tuple[str, int]:
    parsed = sa.engine.make_url(url)
    return parsed.host or "127.0.0.1", parsed.port or 5432


def _via(url: str, port: int) -> str:
    return sa.engine.make_url(url).set(port=port).render_as_string(hide_password=False)


def test_database_refused(tmp_path, postgres_url, pushgateway) -> None:
    load_data(postgres_url)
    config = write_config(tmp_path / "c.yaml", _via(postgres_url, 9), pushgateway.url)
    code, _, err = evaljobs(config)
    assert code == 1
    line = one_line(err)
    assert "cannot connect to database" in line and "check 'database:'" in line
    assert rows(postgres_url) == []
    assert samples(f"{pushgateway.url}/metrics", "model_accuracy_ratio") == []
    assert_recovers(tmp_path, postgres_url, pushgateway.url)


def test_database_hung_is_bounded_by_timeouts_connect(tmp_path, postgres_url, pushgateway) -> None:
    load_data(postgres_url)
    hung = HungServer()
    try:
        config = write_config(tmp_path / "c.yaml", _via(postgres_url, hung.port), pushgateway.url,
                              extra="timeouts: {connect: 2s}\n")
        started = time.monotonic()
        code, _, err = evaljobs(config)
        elapsed = time.monotonic() - started
    finally:
        hung.close()
    assert code == 1 and elapsed < 20
    assert "timeouts.connect" in one_line(err)
    assert rows(postgres_url) == []
    assert_recovers(tmp_path, postgres_url, pushgateway.url)


def test_lock_held_is_bounded_by_timeouts_statement(tmp_path, postgres_url, pushgateway) -> None:
    load_data(postgres_url)
    config = write_config(tmp_path / "c.yaml", postgres_url, pushgateway.url, extra="timeouts: {statement: 2s}\n")
    locker = sa.create_engine(postgres_url)
    with locker.connect() as conn:
        conn.execute(sa.text("BEGIN"))
        conn.execute(sa.text("LOCK TABLE predictions IN ACCESS EXCLUSIVE MODE"))
        started = time.monotonic()
        code, _, err = evaljobs(config)
        elapsed = time.monotonic() - started
        conn.execute(sa.text("ROLLBACK"))
    locker.dispose()
    assert code == 1 and elapsed < 30
    line = one_line(err)
    assert "statement timeout" in line and "timeouts.statement" in line
    row = job_row(postgres_url)  # the schema check may time out before the window is claimed
    assert row is None or (row["status"] == "failed" and row["claimed_by"] is None)
    assert samples(f"{pushgateway.url}/metrics", "model_accuracy_ratio") == []
    assert_recovers(tmp_path, postgres_url, pushgateway.url)


def test_connection_cut_mid_query_by_a_proxy(tmp_path, postgres_url, pushgateway) -> None:
    """The database and the results store both go through the proxy: the failure cannot even be
    recorded. The message names the failed query, and the next run on this host takes the dead
    run's claim over at once."""
    load_data(postgres_url, slow_seconds=8)
    proxy = TcpProxy(*_port_of(postgres_url))
    config = write_config(tmp_path / "c.yaml", _via(postgres_url, proxy.port), pushgateway.url, slow=True)
    process, log = start(config, tmp_path)
    wait_until(lambda: (job_row(postgres_url) or {}).get("status") == "running", what="the claim")
    time.sleep(0.5)
    proxy.kill()
    assert process.wait(timeout=30) == 1
    line = one_line(log.read_text())
    assert "job 'j': query" in line and "could not be released" in line and "recording a failed run" not in line
    assert job_row(postgres_url)["status"] == "running"  # the claim is left behind ...
    code, _, err = evaljobs(write_config(tmp_path / "r.yaml", postgres_url, pushgateway.url))
    assert code == 0 and "took over the claim" in err  # ... and taken over by the next run
    assert_recovers(tmp_path, postgres_url, pushgateway.url)


def test_pg_terminate_backend_mid_query(tmp_path, postgres_url, pushgateway) -> None:
    load_data(postgres_url, slow_seconds=8)
    config = write_config(tmp_path / "c.yaml", postgres_url, pushgateway.url, slow=True)
    process, log = start(config, tmp_path)
    wait_until(lambda: (job_row(postgres_url) or {}).get("status") == "running", what="the claim")
    assert terminate_running_query(postgres_url)
    assert process.wait(timeout=30) == 1
    assert "job 'j': query" in one_line(log.read_text())
    assert job_row(postgres_url)["status"] == "failed" and job_row(postgres_url)["claimed_by"] is None
    assert_recovers(tmp_path, postgres_url, pushgateway.url)


# ---- signals at each phase -----------------------------------------------------------------------
PHASES = ("evaluating", "storing", "pushing")


#: SIGTERM (what cron, systemd and Kubernetes send) at every phase; SIGINT takes the same path (one
#: phase); SIGKILL leaves no chance to clean up, so the next run's recovery is what is tested.
SIGNAL_CASES = [(phase, signal.SIGTERM) for phase in PHASES] + [("evaluating", signal.SIGINT)] + \
    [(phase, signal.SIGKILL) for phase in ("evaluating", "pushing")]


@pytest.mark.parametrize("phase, signum", SIGNAL_CASES, ids=[f"{p}-{s.name}" for p, s in SIGNAL_CASES])
def test_signal_at_each_phase(tmp_path, postgres_url, pushgateway, phase, signum) -> None:
    load_data(postgres_url, slow_seconds={"evaluating": 8, "storing": 2}.get(phase))
    with FakeGateway(delay=30) as slow_gateway:
        gateway = slow_gateway.url if phase == "pushing" else pushgateway.url
        config = write_config(tmp_path / "c.yaml", postgres_url, gateway, slow=phase != "pushing")
        if phase == "pushing":  # a gateway slower than the signal
            config.write_text(config.read_text().replace("timeout_seconds: 1", "timeout_seconds: 60"))
        locker = sa.create_engine(postgres_url)
        lock = locker.connect()
        process, log = start(config, tmp_path)
        if phase == "pushing":
            wait_until(lambda: slow_gateway.requests, what="the push")
        else:
            wait_until(lambda: job_row(postgres_url) is not None, what="the claim")
            if phase == "storing":  # the final write, after the evaluation, waits for this lock
                lock.execute(sa.text("BEGIN"))
                lock.execute(sa.text("LOCK TABLE evaljobs_results IN SHARE MODE"))
                wait_until(lambda: _waiting_write(postgres_url), what="the result's write")
            time.sleep(0.3)
        process.send_signal(signum)
        if phase == "storing":  # the write is cancelled; releasing the claim then needs the lock
            time.sleep(1.0)
            lock.execute(sa.text("ROLLBACK"))
        code = process.wait(timeout=30)
        lock.close()
        locker.dispose()
    err = log.read_text()
    if signum == signal.SIGKILL:
        assert code == -signal.SIGKILL and err == ""
    else:
        assert code == 128 + signum
        line = one_line(err)
        assert line.startswith(f"evaljobs: terminated by {signum.name}")
        if phase != "pushing":
            assert "the window's claim was released" in line
    row = job_row(postgres_url)
    if phase == "pushing":  # stored before the push: pending, and pushed by the next run
        assert row["status"] == "ok" and row["claimed_by"] is None and row["push_status"] == "pending"
    elif signum == signal.SIGKILL:  # no chance to clean up: the dead claim is left ...
        assert row["status"] == "running" and row["claimed_by"] is not None
    else:  # released: the window is as it was before (it had no row)
        assert row is None
    assert samples(f"{pushgateway.url}/metrics", "model_accuracy_ratio") == []
    assert_recovers(tmp_path, postgres_url, pushgateway.url)  # ... and taken over by the next run


def _waiting_write(url: str) -> bool:
    """Whether a session waits for a lock while writing the results table."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%evaljobs_results%' AND pid <> pg_backend_pid()")).scalar())
    finally:
        engine.dispose()


# ---- schedulers and cron together ----------------------------------------------------------------
def test_two_schedulers_and_a_cron_run_evaluate_a_window_once(tmp_path, postgres_url, pushgateway) -> None:
    load_data(postgres_url, slow_seconds=4)
    config = write_config(tmp_path / "c.yaml", postgres_url, pushgateway.url, slow=True)
    # The schedulers catch up the latest fire time's window; `run` without --at evaluates the same.
    config.write_text(config.read_text().replace("jobs:", "scheduler:\n  catch_up: 1\njobs:"))
    schedulers = [subprocess.Popen([sys.executable, "-m", "evaljobs", "schedule", "--catch-up-only", "--config",
                                    str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                  for _ in range(2)]
    code, _, err = evaljobs(config, at=False)
    logs = [process.communicate(timeout=60)[1] for process in schedulers]
    assert all(process.returncode == 0 for process in schedulers), logs
    # The schedulers never evaluate a window twice between them ...
    assert sum(log.count("evaluated job j window") for log in logs) <= 1, logs
    fire = latest_fire_time("0 0 * * *", datetime.now(timezone.utc))
    evaluations = [r["evaluations"] for r in rows(postgres_url) if r["row_kind"] == "job" and r["evaluated_at"] == fire]
    # ... and the cron run either waits its turn (75, nothing evaluated) or evaluates alone: first (the
    # schedulers then find the window done) or after a scheduler finished (run re-evaluates, by design).
    assert code in (0, 75), err
    if code == 75:
        assert "being evaluated by" in err and "try again later" in err and evaluations == [1]
    else:
        assert evaluations in ([1], [2])
    assert job_row(postgres_url)["claimed_by"] is None
