"""Segments on every engine: per segment value, the numbers equal scikit-learn's on that value's
rows; values beyond max_segment_values are folded into (other), and the fold is reported."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import strategies as st
from sklearn import metrics as skm

from evaljobs import cli, exposition
from evaljobs.db.engine import connect
from evaljobs.errors import SourceError
from evaljobs.quality.segments import NULL_VALUE, OTHER
from evaljobs.windows import plan_window

from tests.db.test_pipeline_db import AT, ORIGIN, TOL, evaluate, make_job
from tests.db.test_regression_db import latest_labels
from tests.conftest import examples
from tests.dbdata import Label, Prediction, for_each_data_set, load

SEGMENTS = ["country", "channel"]
COUNTRIES = ["AA", "BB", "CC", "DD", None]
CHANNELS = ["app", "web"]


@st.composite
def segmented_sets(draw, task: str):
    classes = ["cat", "dog", "eel"]
    n = draw(st.integers(1, 50))
    predictions, labels = [], []
    for i in range(n):
        at = ORIGIN + timedelta(minutes=draw(st.integers(0, 48 * 60)))
        value = (draw(st.sampled_from(classes)) if task == "multiclass"
                 else repr(float(draw(st.integers(-50, 50)) / 4)))
        extra = {"country": draw(st.sampled_from(COUNTRIES)), "channel": draw(st.sampled_from(CHANNELS))}
        predictions.append(Prediction(f"p{i}", draw(st.sampled_from(["v1", "v2"])), at, value, extra=extra))
        for _ in range(draw(st.integers(0, 2))):
            truth = (draw(st.sampled_from(classes)) if task == "multiclass"
                     else repr(float(draw(st.integers(-50, 50)) / 4)))
            labels.append(Label(f"p{i}", truth, at + timedelta(hours=draw(st.integers(0, 60)))))
    return predictions, labels


def check_segments(result, job, predictions: list[Prediction], labels: list[Label]) -> None:
    window = plan_window(AT, job.window, job.label_delay)
    latest = latest_labels(labels, window.labels_as_of)
    rows = [p for p in predictions if window.start <= p.predicted_at < window.end]

    def value_of(p: Prediction, segment: str) -> str:
        value = p.extra[segment]
        return NULL_VALUE if value is None else value

    for segment in job.segments:
        volumes = Counter(value_of(p, segment) for p in rows)
        kept = {s.value for v in result.versions for s in v.segments if s.segment == segment} - {OTHER}
        folded = set(volumes) - kept
        # The guard keeps the largest values (ties in any order) and reports what it folded.
        assert len(kept) == min(len(volumes), job.max_segment_values)
        assert not folded or min(volumes[k] for k in kept) >= max(volumes[f] for f in folded)
        for version in result.versions:
            [fold] = [f for f in version.segment_folds if f.segment == segment]
            assert (fold.folded_values, fold.folded_predictions) == (len(folded), sum(volumes[f] for f in folded))
            slices = {s.value: s for s in version.segments if s.segment == segment}
            mine = [p for p in rows if p.model_version == version.model_version]
            expected_values = {value_of(p, segment) if value_of(p, segment) in kept else OTHER for p in mine}
            assert set(slices) == expected_values
            for value, got in slices.items():
                members = [p for p in mine if (value_of(p, segment) if value_of(p, segment) in kept else OTHER) == value]
                pairs = [(latest[p.prediction_id].label, p.predicted_label) for p in members if p.prediction_id in latest]
                assert (got.window_predictions, got.labeled_predictions) == (len(members), len(pairs))
                if not pairs:
                    assert got.metrics is None and got.regression is None
                    continue
                y, yhat = [t for t, _ in pairs], [p for _, p in pairs]
                if job.task == "regression":
                    y, yhat = np.array(y, dtype=float), np.array(yhat, dtype=float)
                    assert got.regression.mae == pytest.approx(skm.mean_absolute_error(y, yhat), rel=TOL, abs=TOL)
                    assert got.regression.rmse == pytest.approx(skm.root_mean_squared_error(y, yhat), rel=TOL, abs=TOL)
                    if len(y) >= 2 and np.ptp(y) > 0:
                        assert got.regression.r2 == pytest.approx(skm.r2_score(y, yhat), rel=TOL, abs=TOL)
                else:
                    classes = sorted(set(y) | set(yhat))
                    assert got.metrics.accuracy == pytest.approx(skm.accuracy_score(y, yhat), abs=TOL)
                    f1 = skm.f1_score(y, yhat, labels=classes, average="macro", zero_division=0)
                    assert got.metrics.macro.f1 == pytest.approx(f1, abs=TOL)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_random_segments_equal_sklearn(engine_url: str, task: str) -> None:
    job = make_job(task, segments=SEGMENTS, max_segment_values=2)
    for_each_data_set(engine_url, job, AT, segmented_sets(task), lambda result, predictions, labels, *_:
                      check_segments(result, job, predictions, labels), examples=examples(engine_url, 20))


def demo_rows() -> tuple[list[Prediction], list[Label]]:
    """Ten countries of falling volume (C0 biggest), one channel, all labelled; C0 always right."""
    at = AT - timedelta(days=1, hours=12)
    predictions, labels = [], []
    i = 0
    for rank in range(10):
        for k in range(20 - rank):
            predicted = "1" if rank == 0 or k % 2 else "0"
            predictions.append(Prediction(f"p{i}", "v1", at, predicted, extra={"country": f"C{rank}", "channel": "web"}))
            labels.append(Label(f"p{i}", "1", at + timedelta(hours=1)))
            i += 1
    return predictions, labels


def test_guard_folds_the_smallest_values_and_publishes_labels(engine_url: str) -> None:
    engine = connect(engine_url, create=True)
    load(engine, *demo_rows())
    engine.dispose()
    [version] = evaluate(engine_url, make_job("multiclass", segments=["country", "channel"], max_segment_values=3)).versions
    countries = {s.value: s for s in version.segments if s.segment == "country"}
    assert list(countries) == ["C0", "C1", "C2", OTHER]
    assert countries["C0"].metrics.accuracy == 1.0 and countries["C0"].window_predictions == 20
    assert countries[OTHER].window_predictions == sum(20 - r for r in range(3, 10))
    assert [(f.segment, f.folded_values) for f in version.segment_folds] == [("country", 7), ("channel", 0)]
    families = {f.name: f for f in exposition.version_families(version)}
    accuracy = {(s.labels["segment"], s.labels["segment_value"]): s.value
                for s in families["model_segment_accuracy_ratio"].samples}
    assert accuracy[("country", "C0")] == 1.0 and ("channel", "web") in accuracy
    assert {s.labels["segment"]: s.value for s in families["model_segment_folded_values"].samples} == \
        {"country": 7, "channel": 0}
    # The version's own numbers are unchanged by segments.
    assert version.window_predictions == sum(20 - r for r in range(10))


def test_unknown_segment_column_is_a_clear_error(engine_url: str) -> None:
    engine = connect(engine_url, create=True)
    load(engine, *demo_rows())
    engine.dispose()
    with pytest.raises(SourceError, match="segment column 'region' not found in 'predictions'") as info:
        evaluate(engine_url, make_job("multiclass", segments=["region"]))
    assert "\n" not in str(info.value) and "fix the name in segments" in str(info.value)


@pytest.mark.parametrize("bad, message", [
    ("segments: country", "must be a list of column names"),
    ("segments: [country, Country]", "listed twice"),
    ("max_segment_values: 0", "max_segment_values"),
])
def test_bad_segment_settings(bad: str, message: str, tmp_path, capsys) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("jobs:\n  - {name: j, model: m, task: multiclass, window: 1d, schedule: '0 0 * * *', "
                    f"{bad}}}\n")
    assert cli.main(["run", "j", "--config", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
