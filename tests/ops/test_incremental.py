"""Incremental windows (issue 9): a window summed from stored parts equals its full evaluation.

Each check evaluates the same window twice on the same database -- with the results store
(parts stored and reused) and without it (the full path, the reference) -- and compares the
records' ``to_dict()`` exactly: after a first run, a rerun, late labels for an old part, late
predictions, and the window moving forward by one interval. Latencies are multiples of 1/64
so that their sums are exact in any order (a float sum's last bits depend on the order the
database adds in, between two plans of the full query too; see README, Incremental windows).
"""

from __future__ import annotations

import random
import tempfile
from datetime import datetime, timedelta, timezone

import pytest

from evaljobs.config import Job
from evaljobs.db.engine import connect
from evaljobs.db.source import JobSource
from evaljobs.ops import incremental
from evaljobs.ops.incremental.parts import plan_parts, query_ranges
from evaljobs.ops.incremental.stored import touch_plan
from evaljobs.ops.runner import evaluate_job
from evaljobs.ops.store import ResultsStore
from evaljobs.records import JobResult
from evaljobs.windows import plan_window

from tests.conftest import ENGINES
from tests.dbdata import Label, Prediction, insert, load

T1 = datetime(2026, 1, 10, 12, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
THREE_ENGINES = pytest.mark.parametrize("engine_url", ["sqlite", "postgresql", "duckdb"], indirect=True)


def make_job(task: str, **overrides) -> Job:
    fields = {"name": "j", "model": "m", "task": task, "window": "6h", "label_delay": "1h",
              "schedule": "0 * * * *", "latency_buckets": [0.5, 1, 2, 4]}
    if task == "binary":
        # No score column: a binary job with scores is evaluated fully (its ROC AUC needs the
        # whole window's ranks); test_scored_binary_jobs_are_evaluated_fully checks that.
        fields |= {"positive_label": "1", "columns": {"score": None}}
    fields.update(overrides)
    return Job.model_validate(fields)


def data(task: str, seed: int = 7) -> tuple[list[Prediction], list[Label]]:
    """Predictions from T1 - 10h to T1 + 1h (two versions), ~70% labelled after 0 to 5 hours,
    some twice (the latest label wins), some orphan labels; latencies k/64 s or NULL."""
    rng = random.Random(seed)
    classes = ["0", "1"] if task == "binary" else ["a", "b", "c"]
    predictions, labels = [], []
    start = T1 - 10 * HOUR
    for i in range(400):
        at = start + timedelta(seconds=rng.randrange(11 * 3600))
        if i % 50 == 0:
            at = start + timedelta(hours=rng.randrange(11))  # exactly on a part boundary
        latency = None if rng.random() < 0.1 else rng.randrange(400) / 64
        country = None if rng.random() < 0.05 else rng.choice(["US", "GB", "DE", "FR"])
        predictions.append(Prediction(f"p{i}", rng.choice(["v1", "v2"]), at, rng.choice(classes),
                                      latency_seconds=latency, extra={"country": country}))
        if rng.random() < 0.7:
            labeled_at = at + timedelta(seconds=rng.randrange(5 * 3600))
            labels.append(Label(f"p{i}", rng.choice(classes), labeled_at))
            if rng.random() < 0.1:
                labels.append(Label(f"p{i}", rng.choice(classes), labeled_at + timedelta(minutes=rng.randrange(90))))
    labels += [Label(f"orphan{i}", classes[0], T1 - timedelta(minutes=17 * i)) for i in range(5)]
    return predictions, labels


def comparable(result: JobResult) -> dict:
    """What a run reports, without its timing."""
    out = result.to_dict()
    out.pop("duration_seconds")
    return out


_SIDE_STORES: dict[str, ResultsStore] = {}


def store_of(engine) -> ResultsStore:
    """The results store for data in ``engine``: the same database, except beside Spark, whose
    tables cannot hold it (a Spark config sets results.database): a SQLite file per engine."""
    if engine.dialect.name != "hive":
        return ResultsStore(engine)
    if str(engine.url) not in _SIDE_STORES:  # each test has its own Spark database
        _SIDE_STORES[str(engine.url)] = ResultsStore(connect(f"sqlite:///{tempfile.mkdtemp()}/results.db", create=True))
    return _SIDE_STORES[str(engine.url)]


def check(engine, job: Job, at: datetime, labels_as_of: datetime | None = None) -> incremental.IncrementalResult:
    """Evaluate at ``at`` from parts and fully; assert the results are equal; return what the parts did."""
    source, store = JobSource(engine, job), store_of(engine)
    source.check_schema()
    window = plan_window(at, job.window, job.label_delay, labels_as_of)
    stats = incremental.evaluate_incremental(source, window, store_of(engine))
    assert stats is not None
    # evaluate_incremental stored what it computed: this run reuses every part.
    from_parts = evaluate_job(source, window, summaries=store)
    full = evaluate_job(source, window)
    assert comparable(from_parts) == comparable(full)
    assert full.versions and all(v.latency for v in full.versions if v.window_predictions)
    # Label delays come from parts when their "due" times fall on the grid (labels_as_of = at here).
    assert (stats.delays is not None) == (labels_as_of is None) and all(v.label_delay for v in full.versions)
    if job.drift is not None:
        assert from_parts.versions[-1].drift and from_parts.versions[-1].drift.features
        assert stats.drift is not None
    return stats


@THREE_ENGINES
@pytest.mark.parametrize("task", ["multiclass", "binary"])
def test_parts_equal_the_full_window_through_late_data_and_a_moving_window(engine_url: str, task: str) -> None:
    # Categorical drift of a feature and the predicted label from parts: against the previous
    # window (the previous run's parts) for one task, against version v1 in the window for the other.
    reference = {"kind": "previous_window"} if task == "multiclass" else {"kind": "version", "version": "v1"}
    job = make_job(task, drift={"reference": reference, "features": [{"name": "country", "kind": "categorical"}]})
    predictions, labels = data(task)
    engine = connect(engine_url, create=True)
    try:
        load(engine, predictions, labels)
        first = check(engine, job, T1)
        assert (first.reused, first.recomputed) == (0, 6)  # six 1h parts of the 6h window

        again = check(engine, job, T1)
        assert (again.reused, again.recomputed) == (6, 0)

        # Late labels (arrived after T1) for predictions of an old part, seen at labels_as_of T1 + 30m.
        old = [p for p in predictions if T1 - 7 * HOUR <= p.predicted_at < T1 - 6 * HOUR]
        insert(engine, "labels", [{"prediction_id": p.prediction_id, "label": p.predicted_label,
                                   "labeled_at": T1 + timedelta(minutes=10)} for p in old[:3]])
        late = check(engine, job, T1, labels_as_of=T1 + timedelta(minutes=30))
        # Late labels update the stored parts (the old one, and those whose generated labels
        # arrived in [T1, T1 + 30m)); nothing is rescanned.
        assert (late.reused, late.recomputed) == (6, 0) and late.updated >= 1

        # Late predictions for an old part: its count changes.
        insert(engine, "predictions", [{
            # late0 .. late2, and the prediction of the orphan label "orphan1", written after its label
            "prediction_id": f"late{i}" if i < 3 else "orphan1", "model_name": "m", "model_version": "v2",
            "predicted_at": T1 - 5 * HOUR + timedelta(minutes=7 * i), "predicted_label": predictions[i].predicted_label,
            "score": None, "latency_seconds": i / 8} for i in range(4)])
        grown = check(engine, job, T1, labels_as_of=T1 + timedelta(minutes=30))
        assert grown.recomputed == 1

        # The window moves forward by one interval: one new part, plus those with labels in [T1 + 30m, T1 + 1h).
        moved = check(engine, job, T1 + HOUR)
        assert (moved.reused, moved.recomputed) == (5, 1) and moved.updated >= 1
        settled = check(engine, job, T1 + HOUR)
        assert (settled.reused, settled.recomputed) == (6, 0)

        # The prediction of a stored orphan label, written late into an old part: the orphan goes.
        insert(engine, "predictions", [{
            "prediction_id": "orphan2", "model_name": "m", "model_version": "v1",
            "predicted_at": T1 - timedelta(hours=4, minutes=30), "predicted_label": predictions[0].predicted_label,
            "score": None, "latency_seconds": 0.25}])
        resolved = check(engine, job, T1 + HOUR)
        assert resolved.recomputed == 1 and resolved.orphan_recomputed >= 1
    finally:
        engine.dispose()


# Also on Spark (the store in SQLite): its statements are jobs of their own, so one short case there.
@pytest.mark.parametrize("engine_url", ENGINES, indirect=True)
def test_a_window_not_on_the_grid_has_a_short_first_part(engine_url: str) -> None:
    job = make_job("multiclass", window="330m", incremental={"part": "1h"})  # 5h30m: a 30-minute first part
    engine = connect(engine_url, create=True)
    try:
        load(engine, *data("multiclass", seed=3))
        at = T1 + timedelta(minutes=20)
        first = check(engine, job, at)
        assert first.recomputed == 6
        assert check(engine, job, at).reused == 6
    finally:
        engine.dispose()


@THREE_ENGINES
def test_unchanged_parts_are_verified_at_once_and_a_moved_prediction_is_noticed(engine_url: str) -> None:
    """The previous run's part counts are checked with one aggregate instead of counting each
    part of the look-back again. A prediction rewritten into an earlier part of the window with
    another predicted label keeps the total count and the latest predicted_at, and is still
    noticed (the sum of the part numbers changes): both parts are recomputed, else the window's
    confusion cells would differ from the full evaluation's."""
    import sqlalchemy as sa

    job = make_job("multiclass")
    predictions, labels = data("multiclass", seed=5)
    engine = connect(engine_url, create=True)
    try:
        load(engine, predictions, labels)
        assert check(engine, job, T1).verified_parts == 0  # nothing stored yet: every part counted
        settled = check(engine, job, T1)
        # All counted parts of the 24h look-back but the newest are taken from the previous run.
        assert settled.verified_parts == 23 and (settled.reused, settled.recomputed) == (6, 0)

        moved = next(p for p in predictions if T1 - 3 * HOUR + timedelta(minutes=5) <= p.predicted_at < T1 - 2 * HOUR)
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM predictions WHERE prediction_id = :id"), {"id": moved.prediction_id})
        insert(engine, "predictions", [{
            "prediction_id": moved.prediction_id, "model_name": "m", "model_version": moved.model_version,
            "predicted_at": T1 - 5 * HOUR + timedelta(minutes=1),
            "predicted_label": next(c for c in "abc" if c != moved.predicted_label),
            "score": None, "latency_seconds": moved.latency_seconds}])
        # check() asserts that the parts' result equals the full evaluation.
        noticed = check(engine, job, T1)
        assert noticed.verified_parts == 0 and noticed.recomputed == 2 and noticed.delay_recomputed == 2
        assert check(engine, job, T1).verified_parts == 23

        # A label for no prediction, written with an old arrival time: the arrival parts' check
        # notices it (the orphan count would be one short otherwise).
        insert(engine, "labels", [{"prediction_id": "orphan-late", "label": "a",
                                   "labeled_at": T1 - 4 * HOUR + timedelta(minutes=3)}])
        late_orphan = check(engine, job, T1)
        assert late_orphan.orphan_recomputed == 1 and late_orphan.verified_parts == 23
    finally:
        engine.dispose()


def test_touch_plan_uses_one_key_range_only_when_it_holds_exactly_the_touched_parts() -> None:
    from evaljobs.ops.store import Summary

    def stored(*keys: tuple[str, str]) -> dict[str, Summary]:
        return {key: Summary(key, "", as_of, "") for key, as_of in keys}

    parts = [("d/01/02", "t0"), ("d/02/03", "t0"), ("d/03/04", "t0")]
    # Every stored part at t0 in [d/01/02, d/03/04] is touched (d/02/03 rewritten): one range.
    assert touch_plan(stored(*parts, ("d/00/01", "t0")), {"t0": ["d/01/02", "d/03/04"]},
                      ["d/02/03"]) == ([("t0", "d/01/02", "d/03/04")], [])
    # Another window's part at t0 inside the range (a clipped first part): the keys one by one.
    assert touch_plan(stored(*parts, ("d/02:30/03", "t0")), {"t0": [k for k, _ in parts]}, []) == \
        ([], [k for k, _ in parts])
    # A part at another as_of inside the range does not matter.
    assert touch_plan(stored(*parts, ("d/02:30/03", "t1")), {"t0": [k for k, _ in parts]}, []) == \
        ([("t0", "d/01/02", "d/03/04")], [])


def test_scored_binary_jobs_are_evaluated_fully(sqlite_url: str) -> None:
    job = make_job("binary", columns={})
    engine = connect(sqlite_url, create=True)
    try:
        load(engine, *data("binary"))
        source, store = JobSource(engine, job), ResultsStore(engine)
        source.check_schema()
        assert not incremental.applies(source)
        window = plan_window(T1, job.window, job.label_delay)
        assert comparable(evaluate_job(source, window, summaries=store)) == comparable(evaluate_job(source, window))
        assert store.summaries("j", incremental.KIND) == {}
        assert not incremental.applies(JobSource(engine, make_job("multiclass", incremental=False)))
    finally:
        engine.dispose()


def test_plan_parts_aligns_to_the_window_end() -> None:
    window = plan_window(T1 + timedelta(minutes=20), timedelta(minutes=150), timedelta(0))
    plan = plan_parts(window, HOUR)
    assert [(p.start, p.end) for p in plan.parts] == [
        (window.start, window.start + timedelta(minutes=30)),
        (window.start + timedelta(minutes=30), window.start + timedelta(minutes=90)),
        (window.start + timedelta(minutes=90), window.end)]
    assert plan.offset_seconds == 20 * 60 and plan.part_seconds == 3600
    assert plan_parts(plan_window(T1 + timedelta(microseconds=5), HOUR, timedelta(0)), HOUR) is None


def test_query_ranges_join_the_closest_runs() -> None:
    assert query_ranges([1, 2, 3, 7, 9, 10]) == [(1, 3), (7, 7), (9, 10)]
    assert query_ranges([1, 2, 3, 7, 9, 10], most=2) == [(1, 3), (7, 10)]
    assert query_ranges([]) == []


def test_run_stores_parts_dry_run_does_not_and_refresh_recomputes(tmp_path, sqlite_url: str, capsys) -> None:
    from evaljobs import cli

    engine = connect(sqlite_url, create=True)
    load(engine, *data("multiclass"))
    config = tmp_path / "schedules.yaml"
    config.write_text(f"database: {sqlite_url}\njobs:\n  - {{name: j, model: m, task: multiclass, window: 6h, "
                      "label_delay: 1h, schedule: '0 * * * *'}\n")
    store = ResultsStore(engine)
    base = ["run", "j", "--config", str(config), "--at", T1.isoformat(), "--textfile", str(tmp_path / "m.prom")]
    try:
        assert cli.main(["run", "j", "--config", str(config), "--at", T1.isoformat(), "--dry-run"]) == 0
        assert store.summaries("j", incremental.KIND) == {}
        assert cli.main(base) == 0
        first = store.summaries("j", incremental.KIND)
        assert len(first) == 6
        with engine.begin() as conn:  # a stored part that no longer matches its rows would be reused as is
            conn.exec_driver_sql("UPDATE evaljobs_summaries SET payload = '{\"cells\":[],\"latency\":[]}'")
        assert cli.main(base + ["--refresh-summaries"]) == 0
        assert store.summaries("j", incremental.KIND) == first
    finally:
        engine.dispose()


def test_unreadable_parts_fall_back_to_the_whole_window(sqlite_url: str, caplog) -> None:
    job = make_job("multiclass")
    engine = connect(sqlite_url, create=True)
    try:
        load(engine, *data("multiclass"))
        source, store = JobSource(engine, job), ResultsStore(engine)
        source.check_schema()
        store.ensure_schema()
        with engine.begin() as conn:  # as for a role not granted the table
            conn.exec_driver_sql("DROP TABLE evaljobs_summaries")
        window = plan_window(T1, job.window, job.label_delay)
        assert incremental.evaluate_incremental(source, window, store) is None
        assert "cannot read its stored window parts" in caplog.text
        assert comparable(evaluate_job(source, window, summaries=store)) == comparable(evaluate_job(source, window))
    finally:
        engine.dispose()


@THREE_ENGINES
def test_backfill_and_live_runs_through_the_store_equal_full_evaluations(engine_url: str) -> None:
    """The commands' own path (JobRuns: claim, evaluate with the store, store the result): a
    backfill with today's labels_as_of, then live runs whose labels_as_of is earlier than the
    stored parts' (labels are taken away again: the backward change) and on the grid."""
    from evaljobs.config import Config
    from evaljobs.ops.backfill import backfill
    from evaljobs.ops.runner import Runner
    from evaljobs.ops.runs import JobRuns

    engine = connect(engine_url, create=True)
    try:
        load(engine, *data("multiclass", seed=11))
        config = Config.model_validate({"database": engine_url, "jobs": [{
            "name": "j", "model": "m", "task": "multiclass", "window": "6h", "label_delay": "1h",
            "schedule": "0 * * * *", "latency_buckets": [0.5, 1, 2, 4]}]})
        [job] = config.jobs
        now = T1 + timedelta(hours=1, minutes=17)
        with Runner(config) as runner:
            runs = JobRuns(runner, ResultsStore(runner.engine), sink=None)
            fires = [T1 - timedelta(hours=h) for h in (3, 2, 1, 0)] + [T1 + HOUR]
            report = backfill(runs, job, fires, now)
            live = [runs.evaluate(job, runner.window(job, at), origin="schedule", replace=True, push=False).result
                    for at in (T1, T1 + HOUR, T1)]
            source = runner.source(job)
            for result in [*report.results, *live]:
                full = evaluate_job(source, result.window)
                assert comparable(result) == comparable(full), result.window
            assert len(report.results) == 5 and ResultsStore(runner.engine).summaries("j", incremental.KIND)
    finally:
        engine.dispose()


@THREE_ENGINES
@pytest.mark.parametrize("kind", ["baseline", "table"])
def test_a_fixed_reference_is_summarised_once_until_its_rows_change(engine_url: str, kind: str) -> None:
    from tests.dbdata import create_table

    if kind == "baseline":
        reference = {"kind": "baseline", "start": (T1 - 10 * HOUR).isoformat(), "end": (T1 - 7 * HOUR).isoformat()}
        drift = {"reference": reference, "features": [{"name": "country", "kind": "categorical"}], "label": False}
    else:
        reference = {"kind": "table", "table": "training"}
        drift = {"reference": reference, "features": [{"name": "country", "kind": "categorical"}],
                 "label": False, "predicted_label": False}
    job = make_job("multiclass", drift=drift)
    engine = connect(engine_url, create=True)
    try:
        load(engine, *data("multiclass", seed=5))
        create_table(engine, "training", {"country": "VARCHAR(64)"})
        insert(engine, "training", [{"country": c} for c in ["US"] * 5 + ["GB"] * 3 + ["DE", None]])

        def reference_use(at: datetime) -> tuple[int, int]:
            source, store = JobSource(engine, job), ResultsStore(engine)
            source.check_schema()
            window = plan_window(at, job.window, job.label_delay)
            parts = incremental.evaluate_incremental(source, window, store)
            from evaljobs.drift.evaluate import evaluate_drift

            versions = [v.model_version for v in parts.quality.versions]
            from_parts = evaluate_drift(source, window, versions, categorical_parts=parts.drift.categorical)
            full = evaluate_drift(source, window, versions)
            assert {v: r.to_dict() for v, r in from_parts[0].items()} == {v: r.to_dict() for v, r in full[0].items()}
            assert from_parts[1] == full[1] and full[0]
            stored = store.summaries("j", incremental.REFERENCE_KIND)
            assert len(stored) == (2 if kind == "baseline" else 1)  # country (and predicted_label)
            return parts.drift.reused, parts.drift.recomputed

        values = 2 if kind == "baseline" else 1
        first = reference_use(T1)
        assert first[1] >= values  # the reference summarised (and the window's parts)
        again = reference_use(T1 + HOUR)
        assert again[0] >= values and again[1] == 1 * values  # the reference reused; the window's new part read
        if kind == "baseline":
            insert(engine, "predictions", [{"prediction_id": "extra", "model_name": "m", "model_version": "v1",
                                            "predicted_at": T1 - 8 * HOUR, "predicted_label": "a", "score": None,
                                            "latency_seconds": None, "country": "FR"}])
        else:
            insert(engine, "training", [{"country": "FR"}])
        changed = reference_use(T1 + HOUR)
        assert changed[1] == values  # the reference summarised again
    finally:
        engine.dispose()


def test_too_many_parts_evaluate_the_window_whole(sqlite_url: str, caplog) -> None:
    job = make_job("multiclass", window="90d", schedule="* * * * *")  # a minute's parts: 129,600
    engine = connect(sqlite_url, create=True)
    try:
        load(engine, *data("multiclass"))
        source, store = JobSource(engine, job), ResultsStore(engine)
        source.check_schema()
        window = plan_window(T1, job.window, job.label_delay)
        with caplog.at_level("INFO", logger="evaljobs.incremental"):
            assert incremental.evaluate_incremental(source, window, store) is None
        assert "129600 parts (at most 2500)" in caplog.text and "set incremental.part longer" in caplog.text
        assert comparable(evaluate_job(source, window, summaries=store)) == comparable(evaluate_job(source, window))
        assert store.summaries("j", incremental.KIND) == {}
    finally:
        engine.dispose()


def test_incremental_settings() -> None:
    from evaljobs.config import parse_config
    from evaljobs.errors import ConfigError

    assert make_job("multiclass", incremental=False).incremental.enabled is False
    assert make_job("multiclass", incremental={"part": "2h"}).incremental.part == 2 * HOUR
    assert make_job("multiclass").incremental.part is None  # the schedule's interval
    text = ("database: sqlite:///x.db\njobs:\n  - {name: j, model: m, task: multiclass, window: 1d, "
            "schedule: '0 * * * *', incremental: {part: 30s}}\n")
    with pytest.raises(ConfigError) as error:
        parse_config(text)
    assert "incremental.part" in str(error.value) and "at least 1m" in str(error.value)


@THREE_ENGINES
@pytest.mark.parametrize("kind", ["baseline", "table"])
def test_a_fixed_numeric_reference_stores_its_fine_bins_until_its_rows_change(engine_url: str, kind: str) -> None:
    """A numeric feature against a baseline or table reference, in the fine-histogram mode: the
    first run stores the reference's bins, the next one reads the window alone (no centre query,
    no reference share of the one-pass query) and reports exactly what the full path does; a
    changed reference, or --refresh-summaries, reads it again."""
    import sqlalchemy as sa

    from evaljobs.drift.evaluate import evaluate_drift
    from tests.dbdata import add_columns, create_table

    if kind == "baseline":
        reference = {"kind": "baseline", "start": (T1 - 10 * HOUR).isoformat(), "end": (T1 - 7 * HOUR).isoformat()}
    else:
        reference = {"kind": "table", "table": "training"}
    # exact_max_values 0: the fine-histogram mode for every value (a bound of 1 keeps it there).
    drift = {"reference": reference, "features": [{"name": "amount", "kind": "numeric"}], "label": False,
             "predicted_label": False, "exact_max_values": 0, "binned_max_error": 1.0}
    job = make_job("multiclass", drift=drift)
    rng = random.Random(11)
    engine = connect(engine_url, create=True)
    try:
        predictions, labels = data("multiclass", seed=5)
        load(engine, predictions, labels)
        add_columns(engine, "predictions", {"amount": "DOUBLE PRECISION"})
        # Dense values (multiples of 1/1024 near 100: many per fine bin, so "binned" mode), a few
        # NULLs, and v2 shifted.
        amounts = [{"id": p.prediction_id, "amount": None if rng.random() < 0.05 else
                    round(rng.gauss(100 + (7 if p.model_version == "v2" else 0), 20) * 1024) / 1024}
                   for p in predictions]
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE predictions SET amount = :amount WHERE prediction_id = :id"), amounts)
        create_table(engine, "training", {"amount": "DOUBLE PRECISION"})
        insert(engine, "training", [{"amount": round(rng.gauss(95, 25) * 1024) / 1024} for _ in range(300)]
               + [{"amount": None}])

        def reference_use(at: datetime) -> tuple[bool, int, int]:
            """(whether the drift statements read the reference's values, stored bins reused, stored)."""
            source, store = JobSource(engine, job), ResultsStore(engine)
            source.check_schema()
            window = plan_window(at, job.window, job.label_delay)
            parts = incremental.evaluate_incremental(source, window, store)
            versions = [v.model_version for v in parts.quality.versions]
            statements: list[str] = []

            def seen(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
                statements.append(statement)

            sa.event.listen(engine, "before_cursor_execute", seen)
            try:
                from_parts = evaluate_drift(source, window, versions, categorical_parts=parts.drift.categorical,
                                            numeric_reference=parts.drift.numeric_reference)
            finally:
                sa.event.remove(engine, "before_cursor_execute", seen)
            full = evaluate_drift(source, window, versions)
            # The same statistics, p-values, modes and bounds as the full path, to the last bit.
            assert {v: r.to_dict() for v, r in from_parts[0].items()} == {v: r.to_dict() for v, r in full[0].items()}
            assert from_parts[1] == full[1] == []
            modes = {f.mode for r in full[0].values() for f in r.features}
            assert "binned" in modes, modes
            assert len(store.summaries("j", incremental.REFERENCE_KIND)) == 1
            # The centre query and the one-pass query with the reference (is_reference 1) are
            # what read the reference's values; the fingerprint only counts its rows.
            read = any("AS center" in s or "1 AS is_reference" in s or "UNION ALL" in s and "reference_rows" in s
                       for s in statements)
            return read, parts.drift.reused, parts.drift.recomputed

        assert reference_use(T1) == (True, 0, 1)  # read and stored
        assert reference_use(T1 + HOUR) == (False, 1, 0)  # reused: only the window is read
        if kind == "baseline":
            insert(engine, "predictions", [{"prediction_id": "extra", "model_name": "m", "model_version": "v1",
                                            "predicted_at": T1 - 8 * HOUR, "predicted_label": "a", "score": None,
                                            "latency_seconds": None, "country": "FR", "amount": 250.5}])
        else:
            insert(engine, "training", [{"amount": 250.5}])
        assert reference_use(T1 + HOUR) == (True, 0, 1)  # the changed reference is read and stored again
        assert reference_use(T1 + HOUR) == (False, 1, 0)
        ResultsStore(engine).clear_summaries("j")  # evaljobs run --refresh-summaries
        assert reference_use(T1 + HOUR) == (True, 0, 1)
    finally:
        engine.dispose()
