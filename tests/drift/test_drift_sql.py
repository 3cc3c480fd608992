"""Drift through the database, on SQLite and PostgreSQL: what the SQL path yields equals scipy
(and the published formulas) on the very same samples, and bad input is reported, not hidden."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial import distance

from evaljobs.drift import methods as drift
from evaljobs.config import Job
from evaljobs.drift.evaluate import evaluate_drift
from evaljobs.records import FeatureDrift
from evaljobs.db.engine import connect, create_reference_schema
from evaljobs.db.source import JobSource
from evaljobs.windows import plan_window

from tests import dbdata
from tests.conftest import examples

AT = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
WINDOW = plan_window(AT, timedelta(days=1), timedelta(0))  # [11-19 12:00, 11-20 12:00)
BASELINE = {"kind": "baseline", "start": "2026-11-10T00:00:00Z", "end": "2026-11-11T00:00:00Z"}
BASELINE_AT = datetime(2026, 11, 10, 6, 0, tzinfo=timezone.utc)
PROPERTY = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# scipy warns when ks_2samp falls back from the exact to the asymptotic p-value; that fallback
# is part of what these tests compare against, not a problem.
pytestmark = pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful:RuntimeWarning")


def make_job(drift_section: dict[str, Any], task: str = "multiclass") -> Job:
    spec: dict[str, Any] = {"name": "drifty", "model": "m", "task": task, "window": "1d",
                            "schedule": "0 * * * *", "drift": drift_section}
    if task == "binary":
        spec["positive_label"] = "1"
    return Job.model_validate(spec)


@pytest.fixture
def engine(engine_url: str):
    yield from _engine(engine_url)


@pytest.fixture
def postgres_engine(postgres_url: str):
    yield from _engine(postgres_url)


def _engine(url: str):
    engine = connect(url, create=True)
    create_reference_schema(engine)
    dbdata.add_columns(engine, "predictions", {"x": "DOUBLE PRECISION", "c": "VARCHAR(20)", "t": "VARCHAR(20)"})
    yield engine
    engine.dispose()


def write(engine, rows: list[dict[str, Any]], labels: list[dict[str, Any]] = ()) -> None:
    """Replace the predictions (and labels) with ``rows``: dicts of version, at, and columns."""
    dbdata.clear(engine, "labels")
    dbdata.clear(engine, "predictions")
    dbdata.insert(engine, "predictions", [
        {"prediction_id": f"p{i}", "model_name": "m", "model_version": r["version"], "predicted_at": r["at"],
         "predicted_label": r.get("predicted", "ab"[i % 2]), "score": r.get("score"), "x": r.get("x"),
         "c": r.get("c"), "t": r.get("t")} for i, r in enumerate(rows)])
    dbdata.insert(engine, "labels", [{"prediction_id": lab["id"], "label": lab["label"], "labeled_at": lab["at"]}
                                     for lab in labels])


def run(engine, job: Job, versions: list[str]):
    source = JobSource(engine, job)
    source.check_schema()
    return evaluate_drift(source, WINDOW, versions)


def in_window(i: int) -> datetime:
    return WINDOW.start + timedelta(seconds=1 + i)


def feature(reports, version: str, name: str) -> FeatureDrift:
    return next(f for f in reports[version].features if f.feature == name)


def quantile_edges(reference: list[float], bins: int) -> list[float]:
    """numpy's 'inverted_cdf' quantiles at k / bins (k = 1 .. bins-1), in exact integer arithmetic."""
    ordered = sorted(reference)
    n = len(ordered)
    return sorted({ordered[-(-k * n // bins) - 1] for k in range(1, bins)})


def psi_formula(reference_counts, current_counts, epsilon=1e-4) -> float:
    r = np.array(reference_counts, float) / sum(reference_counts)
    c = np.array(current_counts, float) / sum(current_counts)
    r[r == 0], c[c == 0] = epsilon, epsilon
    return float(np.sum((c - r) * np.log(c / r)))


values = st.one_of(st.integers(-5, 5).map(float), st.floats(-500, 500, allow_nan=False).map(lambda x: round(x, 2)))
sample = st.lists(values, min_size=1, max_size=50)


def test_numeric_drift_equals_scipy_on_the_same_samples(engine):
    job = make_job({"reference": BASELINE, "features": [{"name": "x", "kind": "numeric"}],
                    "predicted_label": False, "label": False, "bins": 5})

    @settings(PROPERTY, max_examples=examples(str(engine.url), 15))
    @given(sample.filter(lambda s: len(set(s)) > 1), sample, sample,
           st.integers(0, 3), st.integers(0, 3))
    def check(reference, current, other, reference_nulls, current_nulls):
        rows = [{"version": "old", "at": BASELINE_AT + timedelta(seconds=i), "x": x}
                for i, x in enumerate(reference + [None] * reference_nulls)]
        rows += [{"version": "new", "at": in_window(i), "x": x} for i, x in enumerate(current + [None] * current_nulls)]
        rows += [{"version": "other", "at": in_window(i), "x": x} for i, x in enumerate(other)]
        write(engine, rows)
        reports, problems = run(engine, job, ["new", "other"])
        assert problems == []
        for version, values_of_version, nulls in (("new", current, current_nulls), ("other", other, 0)):
            got = feature(reports, version, "x")
            scores = {s.method: s for s in got.statistics}
            expected_ks = stats.ks_2samp(reference, values_of_version)
            assert scores["ks"].score == pytest.approx(expected_ks.statistic, rel=1e-12, abs=1e-15)
            assert scores["ks"].p_value == pytest.approx(expected_ks.pvalue, rel=1e-9, abs=1e-300)
            norm = max(float(np.std(reference)), drift.WASSERSTEIN_MIN_NORM)
            assert scores["wasserstein"].score == pytest.approx(
                stats.wasserstein_distance(reference, values_of_version) / norm, rel=1e-9, abs=1e-9)
            edges = quantile_edges(reference, 5)
            reference_bins = np.bincount(np.searchsorted(edges, reference, side="left"), minlength=len(edges) + 1)
            current_bins = np.bincount(np.searchsorted(edges, values_of_version, side="left"), minlength=len(edges) + 1)
            # Bins no value falls in are left out (they add nothing to PSI or Jensen-Shannon).
            occupied = (reference_bins + current_bins) > 0
            assert [b.reference for b in got.buckets] == reference_bins[occupied].tolist()
            assert [b.current for b in got.buckets] == current_bins[occupied].tolist()
            assert [float(b.name.split(", ")[1].rstrip("]")) for b in got.buckets if not b.name.endswith("+inf)")] == [
                max(x for x in reference if np.searchsorted(edges, x, side="left") == i)
                for i in np.flatnonzero(occupied) if i < len(edges)]
            assert scores["psi"].score == pytest.approx(psi_formula(reference_bins, current_bins), rel=1e-12, abs=1e-12)
            assert scores["jensen_shannon"].score == pytest.approx(
                float(distance.jensenshannon(reference_bins, current_bins, base=2)), rel=1e-12, abs=1e-12)
            assert (got.reference_values, got.current_values, got.current_nulls) == (len(reference), len(values_of_version), nulls)
            assert got.null_ratio == pytest.approx(nulls / (len(values_of_version) + nulls))
            assert got.method == "ks" and got.detected == (expected_ks.pvalue < 0.05)
        assert reports["new"].reference.rows == len(reference) + reference_nulls

    check()


def test_categorical_drift_equals_scipy_on_the_same_samples(engine):
    job = make_job({"reference": BASELINE, "features": [{"name": "c", "kind": "categorical"}],
                    "predicted_label": False, "label": False})
    reference_sample = st.lists(st.sampled_from(["US", "GB", "DE", "FR"]), min_size=1, max_size=50)
    current_sample = st.lists(st.sampled_from(["US", "GB", "DE", "FR", "IN", "BR"]), min_size=1, max_size=50)

    @settings(PROPERTY, max_examples=examples(str(engine.url), 15))
    @given(reference_sample.filter(lambda s: len(set(s)) > 1), current_sample, st.integers(0, 3))
    def check(reference, current, current_nulls):
        rows = [{"version": "old", "at": BASELINE_AT + timedelta(seconds=i), "c": c} for i, c in enumerate(reference)]
        rows += [{"version": "new", "at": in_window(i), "c": c} for i, c in enumerate(current + [None] * current_nulls)]
        write(engine, rows)
        reports, problems = run(engine, job, ["new"])
        assert problems == []
        got = feature(reports, "new", "c")
        scores = {s.method: s for s in got.statistics}
        names = sorted(set(reference) | set(current))
        table = np.array([[reference.count(n) for n in names], [current.count(n) for n in names]])
        expected = stats.chi2_contingency(table)
        assert scores["chi_square"].score == pytest.approx(expected.statistic, rel=1e-12, abs=1e-12)
        assert scores["chi_square"].p_value == pytest.approx(expected.pvalue, rel=1e-12, abs=1e-300)
        seen = sorted(set(reference))
        reference_buckets = [reference.count(n) for n in seen] + [0]
        current_buckets = [current.count(n) for n in seen] + [sum(1 for c in current if c not in seen)]
        assert [b.name for b in got.buckets] == seen + [drift.UNSEEN_CATEGORY]
        assert scores["psi"].score == pytest.approx(psi_formula(reference_buckets, current_buckets), rel=1e-12, abs=1e-12)
        assert scores["jensen_shannon"].score == pytest.approx(
            float(distance.jensenshannon(reference_buckets, current_buckets, base=2)), rel=1e-12, abs=1e-12)
        assert got.null_ratio == pytest.approx(current_nulls / (len(current) + current_nulls))
        assert got.method == "chi_square" and got.detected == (expected.pvalue < 0.05)

    check()


def test_large_samples_use_the_asymptotic_ks_and_distance_defaults(engine):
    # Above 10,000 values ks_2samp switches to the asymptotic p-value; above 1,000 reference
    # values the deciding methods are the distances.
    rng = np.random.default_rng(3)
    reference = np.round(rng.normal(10, 2, size=10_500), 1).tolist()
    current = np.round(rng.normal(10.4, 2, size=1_500), 1).tolist()
    rows = [{"version": "old", "at": BASELINE_AT + timedelta(seconds=i), "x": x, "c": str(int(x) % 4)}
            for i, x in enumerate(reference)]
    rows += [{"version": "new", "at": in_window(i), "x": x, "c": str(int(x) % 5)} for i, x in enumerate(current)]
    write(engine, rows)
    job = make_job({"reference": BASELINE, "features": ["x", "c"], "predicted_label": False, "label": False})
    reports, problems = run(engine, job, ["new"])
    assert problems == []
    x = feature(reports, "new", "x")
    expected = stats.ks_2samp(reference, current)
    assert x.statistic("ks").score == pytest.approx(expected.statistic, rel=1e-12)
    assert x.statistic("ks").p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert (x.kind, x.method, x.threshold) == ("numeric", "wasserstein", 0.1)
    assert x.statistic("wasserstein").score == pytest.approx(
        stats.wasserstein_distance(reference, current) / np.std(reference), rel=1e-9)
    assert x.detected is True  # a shift of 0.2 standard deviations
    c = feature(reports, "new", "c")
    assert (c.kind, c.method) == ("categorical", "jensen_shannon")
    assert [b.name for b in c.buckets] == ["0", "1", "2", "3", drift.UNSEEN_CATEGORY]


def test_reference_kinds_select_the_right_rows(engine):
    rows = [{"version": "v1", "at": in_window(i), "x": float(i % 7), "c": "ab"[i % 3 == 0]} for i in range(40)]
    rows += [{"version": "v2", "at": in_window(100 + i), "x": float(i % 5) + 3, "c": "ac"[i % 2]} for i in range(25)]
    rows += [{"version": "v1", "at": WINDOW.start - timedelta(hours=1, seconds=i), "x": float(i % 3), "c": "bc"[i % 2]}
             for i in range(30)]
    rows += [{"version": "v1", "at": BASELINE_AT + timedelta(seconds=i), "x": float(i % 4), "c": "ab"[i % 2]} for i in range(17)]
    write(engine, rows)
    dbdata.create_table(engine, "training_set", {"x": "DOUBLE PRECISION", "c": "VARCHAR(20)",
                                                  "predicted_label": "VARCHAR(20)"})
    dbdata.insert(engine, "training_set", [{"x": float(i % 6), "c": "ab"[i % 2], "predicted_label": "a"}
                                           for i in range(11)])
    features = ["x", {"name": "c", "kind": "categorical"}]
    cases = {
        "baseline": ({"reference": BASELINE}, ["v1", "v2"], 17),
        "previous_window": ({"reference": {"kind": "previous_window"}}, ["v1", "v2"], 30),
        "version": ({"reference": {"kind": "version", "version": "v2"}}, ["v1"], 25),
        "table": ({"reference": {"kind": "table", "table": "training_set"}}, ["v1", "v2"], 11),
        "baseline of one version": ({"reference": {**BASELINE, "version": "v2"}}, None, None),
    }
    for name, (section, compared, reference_rows) in cases.items():
        job = make_job({**section, "features": features, "predicted_label": False, "label": False})
        reports, problems = run(engine, job, ["v1", "v2"])
        if compared is None:  # v2 has no predictions in the baseline range: an empty reference
            assert reports == {} or all(not r.features for r in reports.values())
            assert len(problems) == 1 and "has no rows" in str(problems[0]) and "'drifty'" in str(problems[0])
            continue
        assert sorted(reports) == compared, name
        assert reports[compared[0]].reference.kind == section["reference"]["kind"]
        assert reports[compared[0]].reference.rows == reference_rows, name
        assert feature(reports, compared[0], "x").reference_values == reference_rows, name
        assert problems == [], (name, problems)
        if name == "version":  # champion vs challenger: v1 against v2's values in the same window
            v1 = [float(i % 7) for i in range(40)]
            v2 = [float(i % 5) + 3 for i in range(25)]
            assert feature(reports, "v1", "x").statistic("ks").score == pytest.approx(stats.ks_2samp(v2, v1).statistic)


def test_a_champion_reference_is_summarised_once(engine):
    """With ``kind: version`` the reference version's rows are the reference only: the window's
    summaries leave it out (it gets no drift), numeric, categorical and label alike."""
    from evaljobs.drift.evaluate import plan_values, reference_rows
    from evaljobs.drift.queries import DriftSource

    rows = [{"version": "v1", "at": in_window(i), "x": float(i % 7), "c": "ab"[i % 3 == 0]} for i in range(40)]
    rows += [{"version": "v2", "at": in_window(100 + i), "x": float(i % 5) + 3, "c": "ac"[i % 2]} for i in range(25)]
    write(engine, rows, [{"id": f"p{i}", "label": "a", "at": in_window(200 + i)} for i in range(65)])
    job = make_job({"reference": {"kind": "version", "version": "v2"},
                    "features": ["x", {"name": "c", "kind": "categorical"}]})
    source = JobSource(engine, job)
    source.check_schema()
    drift_source = DriftSource(source)
    reference, _ = reference_rows(job, WINDOW)
    assert reference.excluded_version == "v2"
    values, _ = plan_values(job, drift_source.columns("predictions"), None, False)
    by_name = {v.name: v for v in values}
    numeric = drift_source.numeric_exact(by_name["x"], WINDOW, reference, 10)
    assert set(numeric.versions) == {"v1"} and numeric.reference.values == 25
    for name in ("c", "label"):
        summary = drift_source.categorical(by_name[name], WINDOW, reference, 100, 2)
        assert set(summary.versions) == {"v1"}, name
        assert sum(summary.versions["v1"].values()) == 40 and summary.reference_rows == 25, name


def test_label_drift_uses_the_latest_label_of_labelled_predictions(engine):
    reference_rows = [{"version": "v1", "at": BASELINE_AT + timedelta(seconds=i)} for i in range(12)]
    current_rows = [{"version": "v1", "at": in_window(i)} for i in range(10)]
    write(engine, reference_rows + current_rows, labels=(
        [{"id": f"p{i}", "label": "1" if i < 3 else "0", "at": BASELINE_AT + timedelta(hours=1)} for i in range(12)]
        # p0's label is corrected later: 1 -> 0; the later row wins.
        + [{"id": "p0", "label": "0", "at": BASELINE_AT + timedelta(hours=2)}]
        # Half the window is labelled, and one label arrives after the evaluation: it is not used.
        + [{"id": f"p{12 + i}", "label": "1", "at": in_window(100)} for i in range(5)]
        + [{"id": "p21", "label": "1", "at": AT + timedelta(hours=1)}]
    ))
    job = make_job({"reference": BASELINE, "predicted_label": False})
    reports, problems = run(engine, job, ["v1"])
    assert problems == []
    label = feature(reports, "v1", "label")
    assert (label.reference_values, label.current_values, label.current_nulls) == (12, 5, None)
    expected = stats.chi2_contingency(np.array([[10, 2], [0, 5]]))
    assert label.statistic("chi_square").score == pytest.approx(expected.statistic)
    assert label.statistic("chi_square").p_value == pytest.approx(expected.pvalue)
    assert label.null_ratio is None


def test_score_and_predicted_label_drift_for_a_binary_job(engine):
    rows = [{"version": "v1", "at": BASELINE_AT + timedelta(seconds=i), "score": i / 40, "predicted": str(int(i >= 20))}
            for i in range(40)]
    rows += [{"version": "v1", "at": in_window(i), "score": 0.5 + i / 60, "predicted": str(int(i >= 5))} for i in range(30)]
    write(engine, rows)
    reports, problems = run(engine, make_job({"reference": BASELINE, "label": False}, task="binary"), ["v1"])
    assert problems == []
    score = feature(reports, "v1", "score")
    expected = stats.ks_2samp([i / 40 for i in range(40)], [0.5 + i / 60 for i in range(30)])
    assert score.kind == "numeric" and score.statistic("ks").p_value == pytest.approx(expected.pvalue, rel=1e-9)
    predicted = feature(reports, "v1", "predicted_label")
    assert predicted.kind == "categorical" and predicted.detected is True
    # A multiclass job has no score drift (the score is a binary job's positive-class probability).
    reports, _ = run(engine, make_job({"reference": BASELINE, "label": False}), ["v1"])
    assert [f.feature for f in reports["v1"].features] == ["predicted_label"]


def test_bad_input_is_reported_per_feature_and_the_rest_still_runs(engine):
    rows = [{"version": "v1", "at": BASELINE_AT + timedelta(seconds=i), "x": float(i), "c": "same", "t": str(i)}
            for i in range(20)]
    rows += [{"version": "v1", "at": in_window(i), "x": float(i) + 0.5, "c": "same", "t": "abc" if i == 3 else str(i)}
             for i in range(20)]
    rows += [{"version": "v2", "at": in_window(50 + i), "x": None, "c": "other", "t": str(i)} for i in range(5)]
    write(engine, rows)
    job = make_job({"reference": BASELINE, "label": False, "features": [
        "x", "missing_column", {"name": "t", "kind": "numeric"}, "c"]})
    reports, problems = run(engine, job, ["v1", "v2"])
    messages = [str(p) for p in problems]
    assert any("job 'drifty' feature 'missing_column': column 'missing_column' not found in 'predictions'" in m
               and "drift.features" in m for m in messages), messages
    assert any(m.startswith("job 'drifty' feature 't':") and "abc" in m and "kind: categorical" in m
               for m in messages), messages
    assert any(m.startswith("job 'drifty' feature 'c':") and "single value (same)" in m for m in messages), messages
    assert any(m.startswith("job 'drifty' version 'v2' feature 'x':") and "NULL" in m for m in messages), messages
    assert len(problems) == 4, messages
    # The rest was evaluated: x for v1, and predicted_label for both versions.
    assert feature(reports, "v1", "x").detected is not None
    assert feature(reports, "v2", "x").null_ratio == 1.0 and feature(reports, "v2", "x").statistics == ()
    assert {f.feature for f in reports["v1"].features} == {"x", "predicted_label"}


def test_an_empty_reference_is_one_problem_and_publishes_zero_rows(engine):
    write(engine, [{"version": "v1", "at": in_window(i), "x": float(i), "c": "a"} for i in range(5)])
    job = make_job({"reference": BASELINE, "features": ["x", "c"]})
    reports, problems = run(engine, job, ["v1"])
    assert len(problems) == 1
    assert str(problems[0]).startswith("job 'drifty' drift: the reference (predictions 2026-11-10 00:00 .. 2026-11-11 00:00 UTC) has no rows")
    assert reports["v1"].reference.rows == 0 and reports["v1"].features == ()


def test_a_missing_reference_table_or_column_is_reported(engine):
    write(engine, [{"version": "v1", "at": in_window(i), "x": float(i), "c": "a"} for i in range(5)])
    job = make_job({"reference": {"kind": "table", "table": "no_such_table"}, "features": ["x"]})
    reports, problems = run(engine, job, ["v1"])
    assert reports == {} and "reference table or view 'no_such_table' not found" in str(problems[0])
    dbdata.create_table(engine, "training_set", {"x": "DOUBLE PRECISION"})
    dbdata.insert(engine, "training_set", [{"x": 1.0}, {"x": 2.0}, {"x": 3.0}])
    job = make_job({"reference": {"kind": "table", "table": "training_set"}, "features": ["x"]})
    reports, problems = run(engine, job, ["v1"])
    messages = sorted(str(p) for p in problems)
    assert messages == [
        "job 'drifty' feature 'label': column 'label' not found in the reference table 'training_set'; add it there or set drift.label: false",
        "job 'drifty' feature 'predicted_label': column 'predicted_label' not found in the reference table 'training_set'; "
        "add it there or set drift.predicted_label: false",
    ]
    assert feature(reports, "v1", "x").statistic("ks").score == pytest.approx(stats.ks_2samp([1, 2, 3], [0, 1, 2, 3, 4]).statistic)


def test_too_many_categories_are_refused(engine):
    rows = [{"version": "v1", "at": BASELINE_AT + timedelta(seconds=i), "c": f"id-{i}"} for i in range(30)]
    rows += [{"version": "v1", "at": in_window(i), "c": f"id-{i}"} for i in range(30)]
    write(engine, rows)
    job = make_job({"reference": BASELINE, "features": ["c"], "max_categories": 10, "predicted_label": False, "label": False})
    reports, problems = run(engine, job, ["v1"])
    assert len(problems) == 1 and "30 distinct values, more than drift.max_categories (10)" in str(problems[0])
    assert reports["v1"].features == ()


def test_overrides_pick_method_and_threshold(engine):
    rows = [{"version": "v1", "at": BASELINE_AT + timedelta(seconds=i), "x": float(i % 10)} for i in range(50)]
    rows += [{"version": "v1", "at": in_window(i), "x": float(i % 10) + 1} for i in range(50)]
    write(engine, rows)
    job = make_job({"reference": BASELINE, "predicted_label": False, "label": False, "thresholds": {"wasserstein": 0.5},
                    "features": [{"name": "x", "method": "psi", "threshold": 5.0}]})
    reports, _ = run(engine, job, ["v1"])
    x = feature(reports, "v1", "x")
    assert (x.method, x.threshold, x.detected) == ("psi", 5.0, x.statistic("psi").score >= 5.0)
    job = make_job({"reference": BASELINE, "predicted_label": False, "label": False, "thresholds": {"ks": 0.0001},
                    "features": ["x"]})
    x = feature(run(engine, job, ["v1"])[0], "v1", "x")
    assert (x.method, x.threshold) == ("ks", 0.0001)
    assert x.detected == (x.statistic("ks").p_value < 0.0001)
    assert math.isclose(x.statistic("wasserstein").score, 1 / np.std([float(i % 10) for i in range(50)]))


NON_FINITE = "NaN or infinite"


def test_nan_and_infinity_are_reported_per_version_never_a_verdict(postgres_engine):
    # PostgreSQL stores float NaN and +/-Infinity, and sorts NaN above every number: without a
    # check, KS would take NaN as the largest value and Wasserstein would be NaN ("no drift").
    reference = [{"version": "v1", "at": BASELINE_AT + timedelta(seconds=i), "x": float(i), "score": i / 20}
                 for i in range(20)]
    current = {
        "v1": ([float(i) + 0.5 for i in range(19)] + [math.nan], [i / 20 for i in range(20)]),
        "v2": ([float(i) for i in range(19)] + [math.inf], [i / 20 for i in range(19)] + [math.nan]),
        "v3": ([float(i) + 30 for i in range(20)], [i / 20 for i in range(18)] + [-math.inf, math.inf]),
    }
    rows = reference + [{"version": version, "at": in_window(100 * k + i), "x": x, "score": score}
                        for k, (version, (xs, scores)) in enumerate(current.items())
                        for i, (x, score) in enumerate(zip(xs, scores))]
    write(postgres_engine, rows)
    job = make_job({"reference": BASELINE, "features": ["x"], "predicted_label": False, "label": False}, task="binary")
    reports, problems = run(postgres_engine, job, ["v1", "v2", "v3"])

    messages = sorted(str(p) for p in problems)
    assert [m.split(":")[0] for m in messages] == [
        "job 'drifty' version 'v1' feature 'x'",
        "job 'drifty' version 'v2' feature 'score'",
        "job 'drifty' version 'v2' feature 'x'",
        "job 'drifty' version 'v3' feature 'score'",
    ], messages
    assert all(NON_FINITE in m and "\n" not in m for m in messages), messages
    assert f"2 {NON_FINITE} values" in next(m for m in messages if m.startswith("job 'drifty' version 'v3' feature 'score'"))
    for version, name in (("v1", "x"), ("v2", "x"), ("v2", "score"), ("v3", "score")):
        unmeasured = feature(reports, version, name)
        assert unmeasured.detected is None and unmeasured.statistics == (), (version, name)
    # The finite values of the same job are still measured, and equal scipy.
    v3 = feature(reports, "v3", "x")
    assert v3.detected is True
    assert v3.statistic("ks").score == pytest.approx(stats.ks_2samp([r["x"] for r in reference], current["v3"][0]).statistic)
    v1_score = feature(reports, "v1", "score")
    assert v1_score.statistic("wasserstein").score == pytest.approx(0.0) and v1_score.detected is False


def test_nan_or_infinity_in_the_reference_is_one_problem_for_the_feature(db_url):
    # SQLite turns a bound NaN into NULL but keeps infinities; PostgreSQL keeps both.
    engine = next(_engine(db_url))
    try:
        specials = [math.inf, -math.inf] + ([math.nan] if engine.dialect.name == "postgresql" else [])
        rows = [{"version": "v1", "at": BASELINE_AT + timedelta(seconds=i), "x": float(i)} for i in range(20)]
        rows += [{"version": "v1", "at": BASELINE_AT + timedelta(seconds=100 + i), "x": x} for i, x in enumerate(specials)]
        rows += [{"version": v, "at": in_window(i), "x": float(i)} for v in ("v1", "v2") for i in range(20)]
        write(engine, rows)
        job = make_job({"reference": BASELINE, "features": ["x"], "label": False})
        reports, problems = run(engine, job, ["v1", "v2"])
        assert [str(p) for p in problems] == [
            f"job 'drifty' feature 'x': the reference (predictions 2026-11-10 00:00 .. 2026-11-11 00:00 UTC) has "
            f"{len(specials)} {NON_FINITE} values: drift not computed; clean the column (or make them NULL)"]
        for version in ("v1", "v2"):
            assert [f.feature for f in reports[version].features] == ["predicted_label"]
        # Infinity in a version of the same column, on both engines.
        write(engine, rows[:20] + [{"version": "v1", "at": in_window(i), "x": x}
                                   for i, x in enumerate([1.0, 2.0, -math.inf])])
        _, problems = run(engine, job, ["v1"])
        assert [str(p) for p in problems] == [
            f"job 'drifty' version 'v1' feature 'x': 1 {NON_FINITE} value in the window: drift not computed; "
            "clean the column (or make them NULL)"]
    finally:
        engine.dispose()
