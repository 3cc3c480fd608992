"""Label delay on every engine: the histogram, the shares within k x label_delay and the
suggested label_delay equal a plain computation on the same rows."""

from __future__ import annotations

import math
from pathlib import Path
from datetime import timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import strategies as st

from evaljobs import cli, exposition
from evaljobs.db.engine import connect
from evaljobs.db.source import JobSource
from evaljobs.quality.label_delay import DELAY_BUCKETS, MULTIPLES, lookback, suggest_label_delays
from evaljobs.windows import plan_window

from tests.db.test_pipeline_db import AT, make_job
from tests.conftest import examples
from tests.conftest import ENGINES
from tests.dbdata import Label, Prediction, for_each_data_set, load

LABEL_DELAY = timedelta(hours=6)


def delay_job(task: str = "multiclass", **overrides):
    return make_job(task, window="6h", label_delay="6h", **overrides)


@st.composite
def delay_sets(draw):
    """Predictions over the look-back, labels arriving minutes to days later (some never, some twice)."""
    job = delay_job()
    window = plan_window(AT, job.window, job.label_delay)
    start = window.end - lookback(window, job.label_delay)
    span = int((window.end - start).total_seconds())
    predictions, labels = [], []
    for i in range(draw(st.integers(1, 40))):
        at = start + timedelta(seconds=draw(st.integers(0, span - 1)))
        # "1": a class and a number, so that the same data serve classification and regression.
        predictions.append(Prediction(f"p{i}", draw(st.sampled_from(["v1", "v2"])), at, "1"))
        for _ in range(draw(st.integers(0, 2))):
            seconds = draw(st.sampled_from([30, 60, 3600, 6 * 3600, 12 * 3600, 24 * 3600])
                           | st.integers(0, 3 * 86400))
            labels.append(Label(f"p{i}", "1", at + timedelta(seconds=seconds)))
    return predictions, labels


def expected_delays(job, predictions, labels) -> dict:
    window = plan_window(AT, job.window, job.label_delay)
    start = window.end - lookback(window, job.label_delay)
    first: dict[str, float] = {}
    for label in labels:
        if label.labeled_at < window.labels_as_of:
            first[label.prediction_id] = min(first.get(label.prediction_id, math.inf), label.labeled_at.timestamp())
    out = {}
    for version in sorted({p.model_version for p in predictions}):
        rows = [p for p in predictions if p.model_version == version and start <= p.predicted_at < window.end]
        if not rows:
            continue
        delays = {p.prediction_id: first[p.prediction_id] - p.predicted_at.timestamp() for p in rows if p.prediction_id in first}
        within = []
        for k in MULTIPLES:
            due = [p for p in rows if p.predicted_at < window.labels_as_of - k * job.label_delay]
            within.append((k, len(due), sum(1 for p in due if delays.get(p.prediction_id, math.inf) <= k * job.label_delay.total_seconds())))
        out[version] = {"predictions": len(rows), "delays": sorted(delays.values()), "within": within}
    return out


# Classification counts the delays in its window statement (sql/window_aggregates.sql),
# regression in their own (sql/label_delays.sql): both against the same plain computation.
@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_random_delays_equal_a_plain_computation(engine_url: str, task: str) -> None:
    job = delay_job(task)

    def check(result, predictions, labels, source, window) -> None:
        want = expected_delays(job, predictions, labels)
        got = {v.model_version: v.label_delay for v in result.versions if v.label_delay}
        # Versions with predictions in the look-back but not in the window have no record.
        assert set(got) <= set(want)
        for version, delay in got.items():
            exp = want[version]
            assert delay.predictions == exp["predictions"]
            assert delay.histogram.count == len(exp["delays"])
            assert list(delay.histogram.cumulative_counts) == [sum(1 for d in exp["delays"] if d <= b + 1e-6)
                                                              for b in DELAY_BUCKETS]
            assert delay.histogram.sum == pytest.approx(sum(exp["delays"]), abs=1e-3 * max(1, len(exp["delays"])))
            assert list(delay.within) == exp["within"]
            assert delay.configured_seconds == LABEL_DELAY.total_seconds()
        for suggestion in suggest_label_delays(source, window, 0.9):
            delays = want[suggestion.model_version]["delays"]
            assert suggestion.labeled == len(delays)
            if not delays:
                assert suggestion.suggested_seconds is None
                continue
            quantile = float(np.quantile(delays, 0.9, method="inverted_cdf"))
            assert suggestion.suggested_seconds == pytest.approx(quantile, abs=1e-3)
            assert suggestion.within_suggested == sum(1 for d in delays if d <= quantile + 1e-6)
            assert suggestion.within_suggested >= 0.9 * len(delays)

    # Regression shares the data and the expected numbers; fewer examples keep the suite's time.
    count = examples(engine_url, 25) if task == "multiclass" else examples(engine_url, 8, on_spark=1)
    for_each_data_set(engine_url, job, AT, delay_sets(), check, examples=count)


# Spark has no unique keys to declare (it always groups, as the tests above check there).
@pytest.mark.parametrize("engine_url", [engine for engine in ENGINES if engine != "spark"], indirect=True)
def test_declared_unique_labels_give_the_same_delays_without_grouping(engine_url: str) -> None:
    """With one declared label row per prediction id the label-delay rows are a plain join
    (sql/fragments/label_delay_rows_unique.sql, no GROUP BY of every prediction;
    sql/fragments/population_rows.sql, no window function); the numbers
    stay those of the plain computation."""
    from hypothesis import HealthCheck, given, settings

    from evaljobs.db import sqlfiles
    from evaljobs.ops.runner import evaluate_job
    from tests.dbdata import reset

    job = delay_job()
    engine = connect(engine_url, create=True)
    window = plan_window(AT, job.window, job.label_delay)

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(delay_sets())
    def check(data) -> None:
        predictions, labels = data
        one_each = list({label.prediction_id: label for label in labels}.values())
        reset(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE UNIQUE INDEX labels_one_per_prediction ON labels (prediction_id)"))
        load(engine, predictions, one_each, fresh=False)
        source = JobSource(engine, job)
        source.check_schema()
        assert source.labels_unique
        assert "GROUP BY" not in sqlfiles.render("fragments/label_delay_rows_unique", source.identifiers(),
                                                 dialect=source.dialect)
        assert source.identifiers()["label_delay_rows"].strip().startswith("label_delay_rows AS")
        # The classification statement's population: a plain join too, no ranking window.
        assert " OVER " not in sqlfiles.render("fragments/population_rows", source.identifiers(),
                                               dialect=source.dialect)
        want = expected_delays(job, predictions, one_each)
        result = evaluate_job(source, window)
        for version in result.versions:
            delay, exp = version.label_delay, want[version.model_version]
            assert delay.predictions == exp["predictions"]
            assert delay.histogram.count == len(exp["delays"])
            assert list(delay.histogram.cumulative_counts) == [sum(1 for d in exp["delays"] if d <= b + 1e-6)
                                                              for b in DELAY_BUCKETS]
            assert delay.histogram.sum == pytest.approx(sum(exp["delays"]), abs=1e-3 * max(1, len(exp["delays"])))
            assert list(delay.within) == exp["within"]
        # The suggestion too (PostgreSQL's sql/postgresql/label_delay_suggestion.sql groups the
        # rows by delay minute first when labels are unique).
        for suggestion in suggest_label_delays(source, window, 0.9):
            delays = want[suggestion.model_version]["delays"]
            assert (suggestion.predictions, suggestion.labeled) == (want[suggestion.model_version]["predictions"],
                                                                    len(delays))
            if not delays:
                assert suggestion.suggested_seconds is None and suggestion.within_suggested == 0
                continue
            quantile = float(np.quantile(delays, 0.9, method="inverted_cdf"))
            assert suggestion.suggested_seconds == pytest.approx(quantile, abs=1e-3)
            assert suggestion.within_suggested == sum(1 for d in delays if d <= quantile + 1e-6)
            assert suggestion.within_configured == sum(1 for d in delays if d <= LABEL_DELAY.total_seconds() + 1e-6)

    try:
        check()
    finally:
        engine.dispose()


def known_delays(url: str, job, at=AT) -> None:
    """v1: 100 predictions at the start of the look-back evaluated at ``at``, minute i with its
    label after i hours (then a correction an hour later, which is not the first arrival)."""
    window = plan_window(at, job.window, job.label_delay)
    start = window.end - lookback(window, job.label_delay)
    predictions, labels = [], []
    for i in range(1, 101):
        at = start + timedelta(minutes=i)
        predictions.append(Prediction(f"p{i}", "v1", at, "a"))
        arrives = at + timedelta(hours=i)
        labels.append(Label(f"p{i}", "a", arrives))
        labels.append(Label(f"p{i}", "b", arrives + timedelta(hours=1)))
    engine = connect(url, create=True)
    load(engine, predictions, labels)
    engine.dispose()


def test_suggestion_is_the_exact_quantile(engine_url: str) -> None:
    # label_delay 1d: the look-back is 4 days before the window's end, so every label (after
    # 1..100 hours) has arrived by AT; 90% of them arrive within 90 hours.
    job = make_job("multiclass", window="6h", label_delay="1d")
    known_delays(engine_url, job)
    engine = connect(engine_url, create=True)
    try:
        [suggestion] = suggest_label_delays(JobSource(engine, job), plan_window(AT, job.window, job.label_delay))
    finally:
        engine.dispose()
    assert (suggestion.predictions, suggestion.labeled) == (100, 100)
    assert suggestion.suggested_seconds == 90 * 3600 and suggestion.suggested == timedelta(hours=90)
    assert suggestion.within_suggested == 90 and suggestion.within_configured == 24
    assert suggestion.share(suggestion.within_configured, of_labeled=True) == 0.24


def test_explain_prints_the_suggestion(engine_url: str, tmp_path, capsys) -> None:
    job = make_job("multiclass", window="6h", label_delay="1d")
    known_delays(engine_url, job)
    config = tmp_path / "s.yaml"
    config.write_text(f"database: '{engine_url}'\njobs:\n  - {{name: j, model: m, task: multiclass, window: 6h, "
                      "label_delay: 1d, schedule: '0 */6 * * *'}\n")
    assert cli.main(["run", "j", "--config", str(config), "--at", AT.isoformat(), "--dry-run", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "label delay of j" in out, out
    [line] = [line for line in out.splitlines() if line.startswith("m/v1")]
    assert line.split()[1:] == ["100", "100", "24.0%", "3d18h", "90.0%", "90.0%"], line


def test_exposition_of_a_label_delay() -> None:
    from evaljobs.records import Histogram, LabelDelay

    delay = LabelDelay(configured_seconds=3600.0, predictions=10,
                       histogram=Histogram(DELAY_BUCKETS, tuple(range(len(DELAY_BUCKETS))), 20, 1234.0),
                       within=((1, 8, 4), (2, 5, 5), (4, 0, 0)))
    families = {f.name: f for f in exposition.label_delay_families_of(delay)}
    shares = {s.labels["multiple"]: s.value for s in families["model_labeled_within_label_delay_ratio"].samples}
    assert shares == {"1": 0.5, "2": 1.0}  # nothing is 4 x label_delay old: no share
    [configured] = families["evaljobs_label_delay_seconds"].samples
    assert configured.value == 3600.0
    names = {s.name for s in families["model_label_delay_seconds"].samples}
    assert names == {"model_label_delay_seconds_bucket", "model_label_delay_seconds_count", "model_label_delay_seconds_sum"}


def test_doctor_suggests_a_label_delay(engine_url: str, tmp_path: Path, capsys) -> None:
    from datetime import datetime, timezone

    from evaljobs.windows import latest_fire_time

    job = make_job("multiclass", window="6h", label_delay="1d", schedule="0 */6 * * *")
    fire = latest_fire_time(job.schedule, datetime.now(timezone.utc).replace(microsecond=0))
    known_delays(engine_url, job, fire)
    config = tmp_path / "s.yaml"
    config.write_text(f"database: '{engine_url}'\njobs:\n  - {{name: j, model: m, task: multiclass, window: 6h, "
                      "label_delay: 1d, schedule: '0 */6 * * *'}\n")
    cli.main(["doctor", "j", "--config", str(config)])
    [line] = [line for line in capsys.readouterr().out.splitlines() if "label_delay (v1)" in line]
    assert line.startswith("warn") and "1d catches 24.0% of the 100 labels" in line, line
    assert "fix: set label_delay: 3d18h" in line
