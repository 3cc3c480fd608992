"""The results store on SQLite and PostgreSQL: migrations, claims, one-transaction results, push retry."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from evaljobs import exposition
from evaljobs.config import Pushgateway
from evaljobs.errors import SinkError, SourceError
from evaljobs.ops.runner import evaluate_job
from evaljobs.sinks.pushgateway import PushgatewaySink
from evaljobs.ops.store import (
    Claim,
    ClaimLost,
    Holder,
    ResultsStore,
    families_from_text,
    migrations,
)
from evaljobs.db.engine import connect
from evaljobs.db.source import JobSource
from evaljobs.windows import Window, plan_window

from tests.conftest import samples
from tests.dbdata import Label, Prediction, load
from tests.db.test_pipeline_db import AT, make_job

JOB = make_job("multiclass")
T = AT - timedelta(days=1, hours=12)  # inside the window evaluated at AT (1d window, 1d label delay)


@pytest.fixture
def engine(db_url):
    engine = connect(db_url, create=True)
    load(engine, [Prediction("a", "v1", T, "x"), Prediction("b", "v1", T, "y"), Prediction("c", "v2", T, "x"),
                  Prediction("d", "v2", T, "x")],
         [Label("a", "x", T), Label("b", "x", T), Label("c", "x", T)])
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine) -> ResultsStore:
    return ResultsStore(engine, claim_expiry=timedelta(minutes=10))


def window_at(at=AT) -> Window:
    return plan_window(at, JOB.window, JOB.label_delay)


def evaluate(engine, window: Window):
    return evaluate_job(JobSource(engine, JOB), window)


def claim(store, window=None, now=AT, replace=False, origin="schedule"):
    return store.claim(JOB.name, JOB.model, window or window_at(), origin, now, replace)


def run_once(store, engine, at=AT, push=True, now=None, replace=True):
    window = window_at(at)
    held = claim(store, window, now or at, replace=replace, origin="run")
    assert isinstance(held, Claim), held
    result = evaluate(engine, window)
    store.finish(held, result, success_timestamp=(now or at).timestamp(), finished_at=now or at, push=push)
    return result


def job_row(store, window=None):
    window = window or window_at()
    return next(r for r in store.rows(JOB.name) if r["row_kind"] == "job" and r["window_end"] == window.end)


# ---- migrations ---------------------------------------------------------------------------------
def test_tables_are_created_on_first_use_and_migrations_are_recorded(store, engine) -> None:
    assert migrations()[0] == (1, "001_results")
    assert "evaljobs_results" not in sa.inspect(engine).get_table_names()
    assert store.migrate() == [name for _, name in migrations()]  # 001_results, 002_text_keys, ...
    assert store.migrate() == []  # idempotent
    assert store.schema_versions() == [v for v, _ in migrations()]
    columns = {c["name"] for c in sa.inspect(engine).get_columns("evaljobs_results")}
    assert {"status", "duration_seconds", "push_status", "pushed_at", "accuracy", "result", "exposition",
            "claimed_by", "evaluations"} <= columns


def test_concurrent_first_use_migrates_once(db_url) -> None:
    engines = [connect(db_url, create=True) for _ in range(4)]
    applied: list[list[str]] = []
    errors: list[BaseException] = []

    def migrate(engine):
        try:
            applied.append(ResultsStore(engine).migrate())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()
    assert not errors, errors
    assert sorted(applied, key=len) == [[], [], [], [name for _, name in migrations()]]


# ---- claims -------------------------------------------------------------------------------------
def test_a_held_window_cannot_be_claimed_twice(store) -> None:
    first = claim(store)
    assert isinstance(first, Claim) and first.fresh
    for replace in (False, True):
        second = claim(store, replace=replace)
        assert isinstance(second, Holder)
        assert second.claimed_by == first.token and "being evaluated by" in second.describe()


def test_a_stale_claim_is_taken_over_and_the_old_run_writes_nothing(store, engine) -> None:
    dead = claim(store, now=AT)
    assert isinstance(claim(store, now=AT + timedelta(minutes=9)), Holder)
    taker = claim(store, now=AT + timedelta(minutes=11))
    assert isinstance(taker, Claim) and taker.token != dead.token
    result = evaluate(engine, window_at())
    with pytest.raises(ClaimLost):
        store.finish(dead, result, AT.timestamp(), AT, push=False)
    assert [r["row_kind"] for r in store.rows(JOB.name)] == ["job"]  # the old run wrote no version rows
    store.finish(taker, result, AT.timestamp(), AT, push=False)
    assert job_row(store)["status"] == "ok"


def test_finished_windows_are_skipped_by_the_scheduler_and_replaced_by_run(store, engine) -> None:
    run_once(store, engine)
    skipped = claim(store, replace=False)
    assert isinstance(skipped, Holder) and skipped.status == "ok" and "already evaluated" in skipped.describe()
    again = claim(store, replace=True)
    assert isinstance(again, Claim) and not again.fresh


def test_release_drops_a_new_claim_and_keeps_an_earlier_result(store, engine) -> None:
    fresh = claim(store)
    store.release(fresh)
    assert store.rows(JOB.name) == []
    run_once(store, engine)
    before = store.rows(JOB.name)
    store.release(claim(store, replace=True))
    assert store.rows(JOB.name) == before


# ---- results --------------------------------------------------------------------------------------
def test_a_result_is_one_job_row_and_one_row_per_version(store, engine) -> None:
    result = run_once(store, engine)
    rows = store.rows(JOB.name)
    assert [(r["row_kind"], r["model_version"]) for r in rows] == [("job", ""), ("version", "v1"), ("version", "v2")]
    job, v1, v2 = rows
    assert job["status"] == "ok" and job["claimed_by"] is None and job["evaluations"] == 1
    assert job["window_start"] == result.window.start and job["evaluated_at"] == AT
    assert job["duration_seconds"] == pytest.approx(result.duration_seconds)
    assert (job["window_predictions"], job["labeled_predictions"]) == (4, 3)
    assert (v1["accuracy"], v1["labeled_predictions"], v2["accuracy"]) == (0.5, 2, 1.0)
    assert json.loads(v1["result"]) == json.loads(json.dumps(result.versions[0].to_dict()))
    assert {r["push_status"] for r in rows} == {"pending"}
    # The stored metrics are the exposition's own families, values identical.
    groups = dict((tuple(sorted(k.items())), f) for k, f in exposition.groups(result, AT.timestamp()))
    for row in rows:
        key = {"model": "m"} | ({"model_version": row["model_version"]} if row["row_kind"] == "version" else {})
        want = [(s.name, s.labels, s.value) for f in groups[tuple(sorted(key.items()))] for s in f.samples]
        got = [(s.name, s.labels, s.value) for f in families_from_text(row["exposition"]) for s in f.samples]
        assert got == want


def test_re_evaluation_replaces_and_never_appends(store, engine) -> None:
    run_once(store, engine)
    load(engine, [Prediction("a", "v1", T, "x")], [Label("a", "x", T)])  # v2 is gone now
    run_once(store, engine)
    rows = store.rows(JOB.name)
    assert [(r["row_kind"], r["model_version"]) for r in rows] == [("job", ""), ("version", "v1")]
    assert rows[0]["evaluations"] == 2 and rows[1]["accuracy"] == 1.0


def test_an_empty_window_is_recorded(store, engine) -> None:
    run_once(store, engine, at=AT + timedelta(days=30))
    [row] = store.rows(JOB.name)
    assert (row["status"], row["window_predictions"], json.loads(row["result"])["versions"]) == ("empty", 0, [])


def test_a_failed_run_is_recorded_and_keeps_the_earlier_result(store, engine) -> None:
    run_once(store, engine)
    held = claim(store, replace=True)
    store.fail(held, "job 'j': query failed", AT, AT + timedelta(seconds=2))
    rows = store.rows(JOB.name)
    assert rows[0]["status"] == "failed" and rows[0]["error"] == "job 'j': query failed"
    assert rows[0]["duration_seconds"] == 2.0 and rows[0]["claimed_by"] is None
    assert [r["model_version"] for r in rows[1:]] == ["v1", "v2"]
    assert store.done_fire_times(JOB.name, AT, AT) == set()  # failed windows are not done


def test_the_result_is_written_in_one_transaction(store, engine) -> None:
    """A write that fails half-way (a trigger refuses the second version row) leaves nothing of it."""
    store.ensure_schema()
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(sa.text("CREATE TRIGGER refuse_v2 BEFORE INSERT ON evaljobs_results "
                                 "WHEN NEW.model_version = 'v2' BEGIN SELECT RAISE(ABORT, 'refused v2'); END"))
        else:
            conn.execute(sa.text("CREATE FUNCTION refuse_v2() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                                 "IF NEW.model_version = 'v2' THEN RAISE EXCEPTION 'refused v2'; END IF; "
                                 "RETURN NEW; END $$"))
            conn.execute(sa.text("CREATE TRIGGER refuse_v2 BEFORE INSERT ON evaljobs_results "
                                 "FOR EACH ROW EXECUTE FUNCTION refuse_v2()"))
    held = claim(store)
    with pytest.raises(SourceError, match="refused v2"):
        store.finish(held, evaluate(engine, window_at()), AT.timestamp(), AT, push=True)
    [row] = store.rows(JOB.name)  # no v1 row, and the job row still only the claim
    assert (row["status"], row["claimed_by"]) == ("running", held.token)


# ---- the scheduler's questions ----------------------------------------------------------------------
def test_done_fire_times_and_history(store, engine) -> None:
    assert store.history(JOB.name) == (None, False)
    run_once(store, engine, at=AT)
    run_once(store, engine, at=AT + timedelta(days=1))
    claim(store, window_at(AT + timedelta(days=2)))  # running: not done
    assert store.done_fire_times(JOB.name, AT, AT + timedelta(days=5)) == {AT, AT + timedelta(days=1)}
    assert store.done_fire_times(JOB.name, AT + timedelta(hours=1), AT + timedelta(days=5)) == {AT + timedelta(days=1)}
    assert store.history(JOB.name) == (AT + timedelta(days=1), True)


# ---- push retry ----------------------------------------------------------------------------------
def pusher(url: str):
    sink = PushgatewaySink.from_config(Pushgateway(url=url, timeout_seconds=2))
    return lambda key, families: sink.push_group(JOB.name, key, families)


def test_only_the_newest_pending_result_of_each_group_is_pushed(store, engine, pushgateway) -> None:
    run_once(store, engine, at=AT, now=AT)
    load(engine, [Prediction("e", "v1", T + timedelta(days=1), "x")], [Label("e", "x", T + timedelta(days=1))],
         fresh=False)
    run_once(store, engine, at=AT + timedelta(days=1), now=AT + timedelta(days=1))
    report = store.push_pending(JOB.name, pusher(pushgateway.url), AT + timedelta(days=2))
    # Day 2 has only v1: its job and v1 groups supersede day 1's; day 1's v2 is still the newest v2.
    assert sorted((k.get("model_version", ""), end) for k, _, end in report.pushed) == [
        ("", AT), ("v1", AT), ("v2", AT - timedelta(days=1))]
    assert report.superseded == 2
    status = {(r["window_end"], r["model_version"]): r["push_status"] for r in store.rows(JOB.name)}
    assert status == {(AT - timedelta(days=1), ""): "superseded", (AT - timedelta(days=1), "v1"): "superseded",
                      (AT - timedelta(days=1), "v2"): "pushed", (AT, ""): "pushed", (AT, "v1"): "pushed"}
    url = f"{pushgateway.url}/metrics"
    stamps = {s.labels.get("model_version", ""): s.value
              for s in samples(url, "evaljobs_last_success_timestamp_seconds")}
    assert stamps == {"": (AT + timedelta(days=1)).timestamp(), "v1": (AT + timedelta(days=1)).timestamp(),
                      "v2": AT.timestamp()}
    assert store.push_pending(JOB.name, pusher(pushgateway.url), AT).pushed == []


def test_an_older_window_is_never_pushed_over_a_newer_one(store, engine, pushgateway) -> None:
    later = T + timedelta(days=1)
    load(engine, [Prediction("e", "v1", later, "x"), Prediction("f", "v2", later, "y")], [], fresh=False)
    run_once(store, engine, at=AT + timedelta(days=1))
    now = AT + timedelta(days=1)  # a window evaluated in the future supersedes nothing (issue 11, A)
    store.push_pending(JOB.name, pusher(pushgateway.url), now)
    run_once(store, engine, at=AT)  # a re-run of an older window, e.g. evaljobs run --at
    report = store.push_pending(JOB.name, pusher(pushgateway.url), now)
    assert report.pushed == [] and report.superseded == 3


def test_a_failed_push_stays_pending_with_its_error(store, engine) -> None:
    run_once(store, engine)
    with pytest.raises(SinkError) as info:
        store.push_pending(JOB.name, pusher("http://127.0.0.1:9"), AT)
    assert "cannot reach Pushgateway http://127.0.0.1:9" in str(info.value)
    assert "3 result(s) of job 'j' are stored and will be pushed at its next run" in str(info.value)
    rows = store.rows(JOB.name)
    assert [r["push_status"] for r in rows] == ["pending"] * 3
    assert rows[0]["push_attempts"] == 1 and "cannot reach" in rows[0]["push_error"]


def test_backfilled_rows_are_never_pushed(store, engine, pushgateway) -> None:
    run_once(store, engine, push=False)
    assert store.push_pending(JOB.name, pusher(pushgateway.url), AT).pushed == []
    assert samples(f"{pushgateway.url}/metrics", "model_accuracy_ratio") == []
