"""Binned numeric drift (evaljobs.drift.binned, sql/drift_numeric_binned.sql): the stated error
bounds hold against scipy on the same samples, and the result is exact when it says so."""

from __future__ import annotations

import math
from datetime import timedelta
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from evaljobs.drift import binned
from evaljobs.drift import methods as drift

from tests.drift.test_drift_sql import BASELINE, BASELINE_AT, engine, feature, in_window, make_job, run, write  # noqa: F401 (engine: a fixture)

pytestmark = pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful:RuntimeWarning")


def bin_of(x: float, params: dict[str, float]) -> int:
    """The SQL's bin number (rounded as PostgreSQL and DuckDB cast to BIGINT)."""
    d = x - params["center"]
    if abs(d) < params["min_magnitude"]:
        return 0
    index = round((math.log(abs(d)) - params["ln_min_magnitude"]) * params["scale"])
    return 1 + index if d > 0 else -1 - index


def histogram(sample: list[float], center: float) -> binned.Histogram:
    params = binned.query_params(center)
    rows = {}
    for x in sample:
        key, d = bin_of(x, params), x - params["center"]
        n, lo, hi, s, s2 = rows.get(key, (0, x, x, 0.0, 0.0))
        rows[key] = (n + 1, min(lo, x), max(hi, x), s + d, s2 + d * d)
    return binned.histograms((SimpleNamespace(is_reference=False, model_version="v", state=0, bin=key, n=n,
                                              smallest=lo, largest=hi, sum_values=s, sum_squares=s2)
                              for key, (n, lo, hi, s, s2) in rows.items()), params["center"])[1]["v"]


def check_bounds(reference: list[float], current: list[float]) -> binned.BinnedComparison:
    center = float(np.mean(reference))
    compared = binned.compare(histogram(reference, center), histogram(current, center), 10)
    n, m = len(reference), len(current)
    ks = compared.max_gap / (n * m)
    exact_ks = stats.ks_2samp(reference, current).statistic
    assert ks - 1e-12 <= exact_ks <= ks + compared.ks_error + 1e-12
    distance = compared.area / (n * m)
    exact_distance = stats.wasserstein_distance(reference, current)
    tolerance = 1e-9 * max(1.0, abs(exact_distance))
    assert abs(distance - exact_distance) <= compared.area_error / (n * m) + tolerance
    if compared.exact:
        assert compared.ks_error == 0 and compared.area_error == 0
        assert ks == pytest.approx(exact_ks, rel=1e-12, abs=1e-15)
    return compared


continuous = st.sampled_from([
    lambda rng, size: rng.normal(0, 1, size),
    lambda rng, size: rng.normal(1e4, 3, size),
    lambda rng, size: rng.lognormal(3, 1.5, size),
    lambda rng, size: rng.standard_t(2, size) * 1e-6,
    lambda rng, size: np.round(rng.normal(0, 20, size)),
])


@settings(max_examples=60, deadline=None)
@given(continuous, continuous, st.integers(0, 2**32 - 1), st.integers(1, 400), st.integers(1, 400))
def test_bounds_hold_against_scipy(reference_draw, current_draw, seed, n, m) -> None:
    rng = np.random.default_rng(seed)
    check_bounds(reference_draw(rng, n).tolist(), current_draw(rng, m).tolist())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-60, 60), min_size=1, max_size=80), st.lists(st.integers(-60, 60), min_size=1, max_size=80))
def test_one_value_per_bin_is_exact(reference: list[int], current: list[int]) -> None:
    # Whole numbers up to 60 are more than 1% apart: each bin holds one distinct value.
    compared = check_bounds([float(x) for x in reference], [float(x) for x in current])
    assert compared.exact


def test_bounds_are_small_for_a_large_normal_sample() -> None:
    rng = np.random.default_rng(5)
    reference, current = rng.normal(0, 1, 200_000).tolist(), rng.normal(0.05, 1, 150_000).tolist()
    compared = check_bounds(reference, current)
    assert compared.ks_error < 0.005
    assert compared.area_error / (len(reference) * len(current)) < 0.005


def test_reference_moments_equal_numpy() -> None:
    rng = np.random.default_rng(9)
    sample = rng.normal(1e4, 3, 50_000).tolist()
    moments = binned.reference_moments(histogram(sample, float(np.mean(sample[:100]))))
    assert moments.mean == pytest.approx(np.mean(sample), rel=1e-12)
    assert math.sqrt(moments.sum_squares / moments.values) == pytest.approx(np.std(sample), rel=1e-9)


# ---- through the database, on SQLite, PostgreSQL and DuckDB --------------------------------------
def load(engine, reference: list[float], current: list[float]) -> None:
    rows = [{"version": "old", "at": BASELINE_AT + timedelta(seconds=i), "x": x} for i, x in enumerate(reference)]
    rows += [{"version": "new", "at": in_window(i), "x": x} for i, x in enumerate(current)]
    write(engine, rows)


def binned_job(**settings_):
    return make_job({"reference": BASELINE, "features": [{"name": "x", "kind": "numeric"}],
                     "predicted_label": False, "label": False, "exact_max_values": 0, **settings_})


def test_binned_drift_in_sql_is_within_its_bounds(engine) -> None:
    rng = np.random.default_rng(11)
    reference = rng.normal(10, 2, 3_000).tolist()
    current = rng.normal(10.5, 2, 2_000).tolist()
    load(engine, reference, current)
    reports, problems = run(engine, binned_job(binned_max_error=1), ["new"])
    assert problems == []
    x = feature(reports, "new", "x")
    assert x.mode == "binned" and x.to_dict()["mode"] == "binned"
    ks, bound = x.statistic("ks").score, x.error_bounds["ks"]
    assert ks - 1e-12 <= stats.ks_2samp(reference, current).statistic <= ks + bound + 1e-12
    assert bound < 0.01
    norm = float(np.std(reference))
    exact = stats.wasserstein_distance(reference, current) / norm
    assert abs(x.statistic("wasserstein").score - exact) <= x.error_bounds["wasserstein"] + 1e-9
    assert x.error_bounds["wasserstein"] < 0.02
    assert (x.reference_values, x.current_values) == (3_000, 2_000)


def test_binned_drift_in_sql_is_exact_with_one_value_per_bin(engine) -> None:
    rng = np.random.default_rng(12)
    reference = rng.integers(-50, 50, 2_000).astype(float).tolist()
    current = rng.integers(-40, 60, 1_500).astype(float).tolist()
    load(engine, reference, current)
    binned_reports, problems = run(engine, binned_job(), ["new"])
    assert problems == []
    exact_reports, _ = run(engine, make_job({"reference": BASELINE, "features": [{"name": "x", "kind": "numeric"}],
                                             "predicted_label": False, "label": False}), ["new"])
    got, want = feature(binned_reports, "new", "x"), feature(exact_reports, "new", "x")
    assert (got.mode, got.error_bounds) == ("exact", None)
    assert [(b.name, b.reference, b.current) for b in got.buckets] == [(b.name, b.reference, b.current)
                                                                       for b in want.buckets]
    for method in drift.methods_for("numeric"):
        assert got.statistic(method).score == pytest.approx(want.statistic(method).score, rel=1e-12, abs=1e-15)
    assert got.statistic("ks").score == pytest.approx(stats.ks_2samp(reference, current).statistic, rel=1e-12)


def test_a_bound_above_the_tolerance_falls_back_to_exact(engine) -> None:
    rng = np.random.default_rng(13)
    reference, current = rng.normal(0, 1, 1_000).tolist(), rng.normal(0.1, 1, 800).tolist()
    load(engine, reference, current)
    reports, problems = run(engine, binned_job(binned_max_error=1e-9), ["new"])
    assert problems == []
    x = feature(reports, "new", "x")
    assert x.mode == "exact"
    assert x.statistic("ks").score == pytest.approx(stats.ks_2samp(reference, current).statistic, rel=1e-12)


# ---- a version reference, binned in the window's own scan ----------------------------------------
def version_job(**settings_):
    return make_job({"reference": {"kind": "version", "version": "champion"},
                     "features": [{"name": "x", "kind": "numeric"}], "predicted_label": False, "label": False,
                     **settings_})


def load_versions(engine, reference: list[float], current: list[float]) -> None:
    # Interleaved in time, as a champion and its challenger serve side by side.
    rows = [{"version": "champion", "at": in_window(2 * i), "x": x} for i, x in enumerate(reference)]
    rows += [{"version": "new", "at": in_window(2 * i + 1), "x": x} for i, x in enumerate(current)]
    write(engine, rows)


def test_a_version_reference_binned_with_the_window_is_within_its_bounds(engine) -> None:
    """The reference version's histogram comes from its groups in the window's one scan: the
    statistics stay within their stated bounds of scipy's on the very same samples, and the
    reference's moments are the reference version's."""
    rng = np.random.default_rng(21)
    reference = rng.normal(-3, 0.5, 2_500).tolist()
    current = rng.normal(-2.9, 0.6, 1_800).tolist()
    load_versions(engine, reference, current + [None] * 7)
    reports, problems = run(engine, version_job(exact_max_values=0, binned_max_error=1), ["champion", "new"])
    assert problems == []
    assert set(reports) == {"new"}
    x = feature(reports, "new", "x")
    assert x.mode == "binned"
    assert (x.reference_values, x.current_values, x.current_nulls) == (2_500, 1_800, 7)
    ks, bound = x.statistic("ks").score, x.error_bounds["ks"]
    assert ks - 1e-12 <= stats.ks_2samp(reference, current).statistic <= ks + bound + 1e-12
    assert bound < 0.01
    exact = stats.wasserstein_distance(reference, current) / float(np.std(reference))
    assert abs(x.statistic("wasserstein").score - exact) <= x.error_bounds["wasserstein"] + 1e-9


def test_a_version_reference_with_one_value_per_bin_equals_the_exact_query(engine) -> None:
    rng = np.random.default_rng(22)
    reference = rng.integers(-50, 50, 1_200).astype(float).tolist()
    current = rng.integers(-40, 60, 900).astype(float).tolist()
    load_versions(engine, reference, current)
    binned_reports, problems = run(engine, version_job(exact_max_values=0), ["champion", "new"])
    assert problems == []
    exact_reports, _ = run(engine, version_job(), ["champion", "new"])
    got, want = feature(binned_reports, "new", "x"), feature(exact_reports, "new", "x")
    assert (got.mode, want.mode) == ("exact", "exact")
    assert [(b.name, b.reference, b.current) for b in got.buckets] == [(b.name, b.reference, b.current)
                                                                       for b in want.buckets]
    for method in drift.methods_for("numeric"):
        assert got.statistic(method).score == pytest.approx(want.statistic(method).score, rel=1e-12, abs=1e-15)
    assert got.statistic("ks").score == pytest.approx(stats.ks_2samp(reference, current).statistic, rel=1e-12)


# ---- the centre: a sample's median, found through the time index ----------------------------------
def test_the_centre_is_the_median_of_the_first_reference_values_in_time(engine) -> None:
    from evaljobs.db.source import JobSource
    from evaljobs.drift.evaluate import reference_rows
    from evaljobs.drift.queries import DriftSource, DriftValue
    from tests.drift.test_drift_sql import WINDOW

    size = binned.CENTER_SAMPLE
    # The first `size` finite values in time are 0 .. size-1 (written in reverse, so their order
    # in time is not their order by value); NULL and NaN-free; later values are far larger.
    early = [float(v) for v in range(size)][::-1]
    rows = [{"version": "old", "at": BASELINE_AT + timedelta(seconds=i), "x": x} for i, x in enumerate(early)]
    rows += [{"version": "old", "at": BASELINE_AT + timedelta(seconds=size + i), "x": 1e6 + i} for i in range(50)]
    rows.insert(3, {"version": "old", "at": BASELINE_AT + timedelta(milliseconds=500), "x": None})
    write(engine, rows)
    source = JobSource(engine, binned_job())
    source.check_schema()
    reference, _ = reference_rows(source.job, WINDOW)
    drift_source = DriftSource(source)
    value = DriftValue("x", "numeric", "x", None)
    assert drift_source.center(value, reference, drift_source._params(WINDOW, reference)) == float(size // 2)


def test_bounds_hold_with_a_centre_far_from_the_mean(engine) -> None:
    """A reference whose first values in time are its smallest (a value that grows over time):
    the sample's median sits at its low end, the bins widen further up, and the stated bounds
    still hold against scipy (they are measured on the bins actually built)."""
    rng = np.random.default_rng(23)
    reference = sorted(rng.normal(100, 10, 3_000).tolist())
    current = rng.normal(103, 10, 2_000).tolist()
    load(engine, reference, current)
    reports, problems = run(engine, binned_job(binned_max_error=1), ["new"])
    assert problems == []
    x = feature(reports, "new", "x")
    assert x.mode == "binned"
    ks, bound = x.statistic("ks").score, x.error_bounds["ks"]
    assert ks - 1e-12 <= stats.ks_2samp(reference, current).statistic <= ks + bound + 1e-12
    exact = stats.wasserstein_distance(reference, current) / float(np.std(reference))
    assert abs(x.statistic("wasserstein").score - exact) <= x.error_bounds["wasserstein"] + 1e-9
    assert bound < 0.02
