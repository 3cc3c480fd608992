"""The scheduler as it runs in production: real processes against real PostgreSQL and Pushgateway.

Evaluations are slowed by a view whose query sleeps in the database (``pg_sleep``), so that
runs really overlap and a signal really arrives mid-run. Schedules are real cron expressions;
``--catch-up-only`` and ``--max-runs`` are the scheduler's own documented options.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from dev import localservices
from evaljobs.ops.store import ResultsStore, families_from_text
from evaljobs.db.engine import connect
from evaljobs.windows import latest_fire_time

from tests.conftest import samples
from tests.dbdata import Label, Prediction, load

pytestmark = pytest.mark.service  # real processes: Pushgateway, Prometheus, PostgreSQL

UTC = timezone.utc


class Processes:
    """Scheduler processes started by one test; whatever is still running at the end is killed."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.started: list[subprocess.Popen] = []

    def start(self, config: Path, *args: str, name: str = "scheduler") -> tuple[subprocess.Popen, Path]:
        log = self.tmp_path / f"{name}-{len(self.started)}.log"
        with open(log, "wb") as output:
            process = subprocess.Popen([sys.executable, "-m", "evaljobs", *args, "--config", str(config)],
                                       stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.started.append(process)
        return process, log

    def run(self, config: Path, *args: str, timeout: float = 60) -> tuple[int, str]:
        process, log = self.start(config, *args, name="command")
        return process.wait(timeout=timeout), log.read_text()

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def processes(tmp_path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    yield started
    started.stop_all()


def wait_for(path: Path, pattern: str, timeout: float = 60) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, path.read_text())
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not in {path} within {timeout}s:\n{path.read_text()}")


def load_traffic(url: str, start: datetime, end: datetime, step: timedelta) -> None:
    """Predictions of two versions every ``step`` in [start, end), each labelled a second later."""
    engine = connect(url)
    predictions, labels = [], []
    moment, i = start, 0
    while moment < end:
        version = "v1" if i % 3 else "v2"
        predicted = "a" if i % 4 else "b"
        predictions.append(Prediction(f"p{i}", version, moment, predicted))
        labels.append(Label(f"p{i}", "a" if i % 5 else "b", moment + timedelta(seconds=1)))
        moment += step
        i += 1
    load(engine, predictions, labels)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE delay (seconds DOUBLE PRECISION)"))
        conn.execute(sa.text("INSERT INTO delay VALUES (0)"))
        # Every query on this view sleeps once, in the database: a slow warehouse, for real. The
        # materialized CTE keeps a nested loop from running the sleep once per row.
        conn.execute(sa.text("CREATE VIEW slow_predictions AS WITH pause AS MATERIALIZED "
                             "(SELECT pg_sleep((SELECT seconds FROM delay))) SELECT p.* FROM predictions p, pause"))
    engine.dispose()


def set_delay(url: str, seconds: float) -> None:
    engine = connect(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE delay SET seconds = :s"), {"s": seconds})
    engine.dispose()


def write_config(tmp_path: Path, url: str, gateway: str, jobs: str, scheduler: str = "") -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text(f"database: '{url}'\npushgateway: {{url: '{gateway}', timeout_seconds: 2}}\n"
                    f"results: {{claim_expiry: 10m}}\nscheduler: {{{scheduler}}}\njobs:\n{jobs}")
    return path


def job_yaml(name: str, schedule: str, window: str, extra: str = "") -> str:
    return (f"  - {{name: {name}, model: m, task: multiclass, window: {window}, schedule: '{schedule}', "
            f"tables: {{predictions: slow_predictions}}{extra}}}\n")


def rows(url: str, job: str, kind: str = "job") -> list[dict]:
    engine = connect(url)
    try:
        return [r for r in ResultsStore(engine).rows(job) if r["row_kind"] == kind]
    finally:
        engine.dispose()


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_two_schedulers_evaluate_each_window_once(postgres_url, pushgateway, tmp_path, processes) -> None:
    now = datetime.now(UTC)
    load_traffic(postgres_url, now - timedelta(minutes=15), now + timedelta(minutes=4), timedelta(seconds=4))
    config = write_config(tmp_path, postgres_url, pushgateway.url, job_yaml("j", "* * * * *", "1m"),
                          "catch_up: 3, stop_timeout: 30s")
    seeded = latest_fire_time("* * * * *", now) - timedelta(minutes=4)
    code, output = processes.run(config, "run", "j", "--at", iso(seeded))
    assert code == 0, output
    set_delay(postgres_url, 0.4)  # each window now takes ~0.8 s (two queries)

    # Both schedulers must start in the same minute: one started at 11:37:59 and one at 11:38:01
    # catch up different windows (five in all), which is right for them and wrong for this test.
    second_of_minute = datetime.now(UTC).second
    if second_of_minute >= 45:
        time.sleep(61 - second_of_minute)
    first, first_log = processes.start(config, "schedule", "--max-runs", "1")
    second, second_log = processes.start(config, "schedule", "--max-runs", "1")
    assert first.wait(timeout=200) == 0 and second.wait(timeout=30) == 0

    logs = [first_log.read_text(), second_log.read_text()]
    evaluated = [re.findall(r"evaluated job j window (\S+)", log) for log in logs]
    skipped = [re.findall(r"skipped job j window (\S+)", log) for log in logs]
    scheduled = [row for row in rows(postgres_url, "j") if row["origin"] == "schedule"]
    # Three catch-up windows and the first cron fire's, each evaluated by exactly one of the two.
    assert len(scheduled) == 4, logs
    assert all(row["status"] == "ok" and row["evaluations"] == 1 and row["claimed_by"] is None for row in scheduled)
    assert sorted(evaluated[0] + evaluated[1]) == sorted(
        f"{iso(r['window_start'])}..{iso(r['window_end'])}" for r in scheduled)
    assert not set(evaluated[0]) & set(evaluated[1])
    assert skipped[0] or skipped[1], logs  # they did contend
    assert all("stopping (1 scheduled run(s) done (--max-runs))" in log for log in logs)
    # The logs say what ran, for which window, how long it took and what was pushed.
    assert re.search(r"evaluated job j window \S+ \(at \S+\) in \d+\.\d+s: ok, 2 version\(s\) \[v1, v2\]", logs[0] + logs[1])
    assert re.search(r"pushed 3 group\(s\) of job j \(window \S+\) to http://127\.0\.0\.1:\d+", logs[0] + logs[1])
    newest = max(r["window_end"] for r in scheduled)
    assert {s.value for s in samples(f"{pushgateway.url}/metrics", "evaljobs_window_end_timestamp_seconds")} == {
        newest.timestamp()}


def test_a_scheduler_down_for_three_windows_catches_up_as_configured(postgres_url, pushgateway, tmp_path,
                                                                       processes) -> None:
    now = datetime.now(UTC)
    load_traffic(postgres_url, now - timedelta(hours=6), now + timedelta(minutes=5), timedelta(minutes=2))
    jobs = job_yaml("three", "0 * * * *", "1h") + job_yaml("two", "0 * * * *", "1h", ", catch_up: 2")
    config = write_config(tmp_path, postgres_url, pushgateway.url, jobs, "catch_up: 3")
    last_before_downtime = latest_fire_time("0 * * * *", now) - timedelta(hours=3)
    for job in ("three", "two"):
        code, output = processes.run(config, "run", job, "--at", iso(last_before_downtime))
        assert code == 0, output
    started = datetime.now(UTC)

    process, log = processes.start(config, "schedule", "--catch-up-only")
    assert process.wait(timeout=60) == 0, log.read_text()
    text = log.read_text()
    latest = latest_fire_time("0 * * * *", started)
    if latest_fire_time("0 * * * *", datetime.now(UTC)) != latest:
        pytest.fail("an hour boundary passed during the test; run it again")
    for job, catch_up in (("three", 3), ("two", 2)):
        fires = sorted(r["evaluated_at"] for r in rows(postgres_url, job) if r["origin"] == "schedule")
        assert fires == [latest - timedelta(hours=n) for n in reversed(range(catch_up))], text
    assert "job two: 1 missed window(s) older than its catch-up limit are left out" in text
    assert (f"fill them with: evaljobs backfill two --from {iso(latest - timedelta(hours=2))} "
            f"--to {iso(latest - timedelta(hours=1))}") in text
    assert "job three: 1 missed" not in text
    assert "stopping (catch-up done)" in text


@pytest.mark.parametrize("how", ["finish", "second-signal", "timeout"])
def test_sigterm_mid_run_leaves_no_half_written_result(postgres_url, pushgateway, tmp_path, processes, how) -> None:
    now = datetime.now(UTC)
    load_traffic(postgres_url, now - timedelta(hours=6), now + timedelta(minutes=5), timedelta(minutes=2))
    stop_timeout = "1s" if how == "timeout" else "30s"
    config = write_config(tmp_path, postgres_url, pushgateway.url, job_yaml("j", "0 * * * *", "1h"),
                          f"catch_up: 3, stop_timeout: {stop_timeout}")
    code, output = processes.run(config, "run", "j", "--at", iso(latest_fire_time("0 * * * *", now) - timedelta(hours=3)))
    assert code == 0, output
    set_delay(postgres_url, 1.5)  # a window takes ~3 s

    process, log = processes.start(config, "schedule")
    running = wait_for(log, r"running job j window (\S+)")
    time.sleep(0.5)  # inside the first query
    process.send_signal(signal.SIGTERM)
    if how == "second-signal":
        wait_for(log, r"stopping \(SIGTERM")
        process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    text = log.read_text()
    window_start = datetime.strptime(running.group(1).split("..")[0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

    job_rows = {r["window_start"]: r for r in rows(postgres_url, "j")}
    version_rows = [r for r in rows(postgres_url, "j", "version") if r["window_start"] == window_start]
    assert all(r["claimed_by"] is None and r["status"] != "running" for r in job_rows.values())
    if how == "finish":
        # The running evaluation finished and was written whole; nothing new was started.
        assert job_rows[window_start]["status"] == "ok"
        stored_versions = sorted(r["model_version"] for r in version_rows)
        assert stored_versions == ["v1", "v2"] == sorted(json.loads(job_rows[window_start]["result"])["versions"])
        assert "stopping: not starting job j" in text
        assert len(job_rows) == 2  # the seeded window and the one that finished
    else:
        # Abandoned: the claim is gone and not one row of the window was written.
        assert window_start not in job_rows and version_rows == []
        assert "abandoned job j window" in text
        assert len(job_rows) == 1
    assert "scheduler stopped" in text


def test_a_result_whose_push_failed_is_pushed_at_the_next_run(postgres_url, tmp_path, processes) -> None:
    now = datetime.now(UTC)
    load_traffic(postgres_url, now - timedelta(hours=6), now + timedelta(minutes=5), timedelta(minutes=2))
    port = localservices.free_port()
    gateway_url = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, postgres_url, gateway_url, job_yaml("j", "0 * * * *", "1h"), "catch_up: 3")
    first, second = (latest_fire_time("0 * * * *", now) - timedelta(hours=n) for n in (2, 1))

    # Run 1: the gateway is down. The result is stored, the push is pending, the exit code says so.
    code, output = processes.run(config, "run", "j", "--at", iso(first))
    assert code == 1 and f"cannot reach Pushgateway {gateway_url}" in output
    assert "result(s) of job 'j' are stored and will be pushed at its next run" in output
    assert {r["push_status"] for r in rows(postgres_url, "j") + rows(postgres_url, "j", "version")} == {"pending"}

    with localservices.start_pushgateway(port=port, log_path=tmp_path / "gw.log") as gateway:
        # Run 2 (a later window): the stored result goes first, then the new one.
        code, output = processes.run(config, "run", "j", "--at", iso(second))
        assert code == 0, output
        by_window = {r["evaluated_at"]: r for r in rows(postgres_url, "j")}
        assert by_window[first]["push_status"] == "pushed" and by_window[first]["push_attempts"] == 2
        assert by_window[second]["push_status"] == "pushed"
        assert by_window[first]["pushed_at"] <= by_window[second]["pushed_at"]
        assert {s.value for s in samples(f"{gateway.url}/metrics", "evaljobs_window_end_timestamp_seconds")} == {
            by_window[second]["window_end"].timestamp()}


def test_a_scheduler_run_pushes_the_stored_result_exactly(postgres_url, tmp_path, processes) -> None:
    """Down for the scheduler's run; the next run has nothing new to evaluate, and pushes the stored metrics."""
    now = datetime.now(UTC)
    load_traffic(postgres_url, now - timedelta(hours=6), now + timedelta(minutes=5), timedelta(minutes=2))
    port = localservices.free_port()
    gateway_url = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, postgres_url, gateway_url, job_yaml("j", "0 * * * *", "1h"), "catch_up: 2")
    code, output = processes.run(config, "run", "j", "--at", iso(latest_fire_time("0 * * * *", now) - timedelta(hours=3)))
    assert code == 1, output

    process, log = processes.start(config, "schedule", "--catch-up-only")
    assert process.wait(timeout=60) == 0
    assert "cannot reach Pushgateway" in log.read_text()
    versions = rows(postgres_url, "j", "version")
    newest = max(r["window_end"] for r in versions)
    # Three windows x two versions, none pushed; only the newest of each group still needs pushing.
    assert sorted((r["window_end"] == newest, r["push_status"]) for r in versions) == [
        (False, "superseded")] * 4 + [(True, "pending")] * 2

    with localservices.start_pushgateway(port=port, log_path=tmp_path / "gw.log") as gateway:
        process, log = processes.start(config, "schedule", "--catch-up-only")
        assert process.wait(timeout=60) == 0
        assert "job j: nothing due" in log.read_text()
        stored = {r["model_version"]: r for r in rows(postgres_url, "j", "version")
                  if r["push_status"] == "pushed"}
        assert sorted(stored) == ["v1", "v2"]
        assert all(r["window_end"] == newest for r in stored.values())
        assert sum(r["push_status"] == "superseded" for r in rows(postgres_url, "j", "version")) == 4
        url = f"{gateway.url}/metrics"
        for version, row in stored.items():
            want = {(s.name, tuple(sorted(s.labels.items())), s.value)
                    for f in families_from_text(row["exposition"]) for s in f.samples}
            for name in ("model_accuracy_ratio", "evaljobs_last_success_timestamp_seconds", "model_recall_ratio"):
                got = {(s.name, tuple(sorted((k, v) for k, v in s.labels.items()
                                             if k not in ("job", "model", "model_version", "instance"))), s.value)
                       for s in samples(url, name) if s.labels.get("model_version") == version}
                assert got == {w for w in want if w[0] == name} and got
