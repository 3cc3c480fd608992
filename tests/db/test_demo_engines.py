"""`evaljobs run` of the demo's jobs (schedules.yaml) on a DuckDB, PostgreSQL and Spark copy of
the demo data gives the numbers it gives on SQLite, to 1e-9; on Spark the results store lives
in another database, as the config says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaljobs.db.engine import connect
from evaljobs.ops.store import ResultsStore

from tests.conftest import DEMO_NOW as NOW
from tests.conftest import samples

ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-9
#: Wall-clock fields: the only ones allowed to differ.
TIMINGS = {"duration_seconds", "seconds"}


def evaljobs(url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "evaljobs", *args, "--config", str(ROOT / "schedules.yaml"),
         "--at", NOW.strftime("%Y-%m-%dT%H:%M:%SZ")],
        env=os.environ | {"EVALJOBS_DATABASE_URL": url} | (env or {}), capture_output=True, text=True, timeout=900)


def demo_results(url: str) -> dict:
    """What the demo's jobs give on ``url`` (the session's demo data, see conftest's demo_data)."""
    done = evaljobs(url, "run", "--all", "--dry-run", "--output", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_same(want: object, got: object, path: str = "") -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), (path, sorted(want), sorted(got))
        for key, value in want.items():
            if key not in TIMINGS:
                assert_same(value, got[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), path
        for i, (a, b) in enumerate(zip(want, got)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        # Label delays are timestamp differences: SQLite's come from julianday() floats
        # (sub-millisecond rounding per value), so their sums agree to 1e-6, not 1e-9.
        tolerance = 1e-6 if ".label_delay." in path else TOL
        assert got == pytest.approx(want, rel=tolerance, abs=TOL), path
    else:
        assert got == want, path


@pytest.fixture(scope="module")
def sqlite_results(demo_data) -> dict:
    results = demo_results(demo_data("sqlite"))
    # Not vacuous: every job, several versions, core and regression metrics, AUC, latency and drift.
    jobs = {job["job"]: job for job in results["jobs"]}
    assert set(jobs) == {"fraud-daily", "intent-6h", "eta-6h"}
    assert all(not job["problems"] for job in jobs.values()), results
    fraud = {v["model_version"]: v for v in jobs["fraud-daily"]["versions"]}
    assert {"v2", "v3-canary"} <= set(fraud)
    assert fraud["v3-canary"]["roc_auc"] and fraud["v3-canary"]["latency"]["count"]
    assert {f["feature"] for f in fraud["v3-canary"]["drift"]["features"]} >= {"amount", "country", "score"}
    assert any(v["drift"]["features"] for v in jobs["intent-6h"]["versions"])
    assert any(v.get("regression") for v in jobs["eta-6h"]["versions"])
    return results


@pytest.mark.parametrize("engine", ["duckdb", "postgresql", "spark"])
def test_demo_jobs_give_the_sqlite_numbers(engine: str, sqlite_results: dict, demo_data, request: pytest.FixtureRequest,
                                           tmp_path: Path) -> None:
    url = demo_data(engine)
    assert_same(sqlite_results, demo_results(url))
    if engine != "spark":
        return
    # A real run stores its results: never in the warehouse, in the database results.database names.
    done = evaljobs(url, "run", "fraud-daily")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "the results store cannot live in hive://" in done.stderr and "results.database" in done.stderr
    gateway = request.getfixturevalue("pushgateway")
    results_url = f"sqlite:///{tmp_path / 'results.db'}"
    done = evaljobs(url, "run", "fraud-daily",
                    env={"EVALJOBS_RESULTS_URL": results_url, "EVALJOBS_PUSHGATEWAY_URL": gateway.url})
    assert done.returncode == 0, done.stderr
    fraud = next(job for job in sqlite_results["jobs"] if job["job"] == "fraud-daily")
    pushed = {s.labels["model_version"]: s.value for s in samples(f"{gateway.url}/metrics", "model_accuracy_ratio")}
    assert pushed == pytest.approx({v["model_version"]: v["accuracy"] for v in fraud["versions"]}, rel=TOL)
    store_engine = connect(results_url)
    try:
        rows = ResultsStore(store_engine).rows("fraud-daily")
    finally:
        store_engine.dispose()
    assert {(r["row_kind"], r["status"], r["push_status"]) for r in rows} == {("job", "ok", "pushed"),
                                                                            ("version", "ok", "pushed")}
