"""The pure drift methods against scipy and the published formulas, on random samples.

The summaries fed to :mod:`evaljobs.drift` are made here from the samples the way
``sql/drift_numeric.sql`` and ``sql/drift_categorical.sql`` make them (cumulative counts over
the union of distinct values, category counts); ``test_drift_sql.py`` checks the SQL itself.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial import distance

from evaljobs.drift import methods as drift

SETTINGS = settings(max_examples=60, deadline=None)
# scipy warns when ks_2samp falls back from the exact to the asymptotic p-value; that fallback
# is part of what these tests compare against, not a problem.
pytestmark = pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful:RuntimeWarning")

# Small integers make ties (the hard case for KS), rounded floats make spread.
values = st.one_of(st.integers(-6, 6).map(float), st.floats(-1000, 1000, allow_nan=False).map(lambda x: round(x, 2)))
samples = st.lists(values, min_size=1, max_size=80)


def ecdf_summary(reference: list[float], current: list[float]) -> tuple[int, float]:
    """``(max |R*m - C*n|, sum (x[i+1]-x[i]) * |R*m - C*n|)`` over the union of distinct values."""
    n, m = len(reference), len(current)
    union = np.unique(np.concatenate([reference, current]))
    at_or_below_r = np.searchsorted(np.sort(reference), union, side="right")
    at_or_below_c = np.searchsorted(np.sort(current), union, side="right")
    gaps = np.abs(at_or_below_r * m - at_or_below_c * n)
    return int(gaps.max()), float(np.sum(np.diff(union) * gaps[:-1]))


def psi_formula(reference_counts, current_counts, epsilon=1e-4) -> float:
    r = np.array(reference_counts, float) / sum(reference_counts)
    c = np.array(current_counts, float) / sum(current_counts)
    r[r == 0] = epsilon
    c[c == 0] = epsilon
    return float(np.sum((c - r) * np.log(c / r)))


@SETTINGS
@given(samples, samples)
def test_ks_statistic_and_p_value_equal_ks_2samp(reference, current):
    max_gap, _ = ecdf_summary(reference, current)
    statistic = drift.ks_statistic(max_gap, len(reference), len(current))
    expected = stats.ks_2samp(reference, current)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12, abs=1e-15)
    assert drift.ks_p_value(statistic, len(reference), len(current)) == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(("n", "m"), [(10_001, 300), (12_000, 11_000), (10_000, 10_000), (20, 15_000)])
def test_ks_p_value_follows_ks_2samp_auto_mode_switch(n, m):
    # Above 10,000 values in either sample ks_2samp switches to the asymptotic distribution.
    rng = np.random.default_rng(n + m)
    reference = np.round(rng.normal(size=n), 2)
    current = np.round(rng.normal(0.05, 1.1, size=m), 2)
    max_gap, _ = ecdf_summary(reference, current)
    statistic = drift.ks_statistic(max_gap, n, m)
    expected = stats.ks_2samp(reference, current)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert drift.ks_p_value(statistic, n, m) == pytest.approx(expected.pvalue, rel=1e-9)


@SETTINGS
@given(samples, samples)
def test_wasserstein_equals_scipy_exactly(reference, current):
    _, area = ecdf_summary(reference, current)
    got = drift.wasserstein(area, len(reference), len(current))
    assert got == pytest.approx(stats.wasserstein_distance(reference, current), rel=1e-9, abs=1e-9)


@SETTINGS
@given(st.lists(values, min_size=2, max_size=80))
def test_wasserstein_norm_is_evidentlys_reference_std(reference):
    mean = math.fsum(reference) / len(reference)
    sum_squares = math.fsum((x - mean) ** 2 for x in reference)
    assert drift.wasserstein_norm(sum_squares, len(reference)) == pytest.approx(
        max(float(np.std(reference)), drift.WASSERSTEIN_MIN_NORM), rel=1e-9)


counts = st.lists(st.integers(0, 50), min_size=2, max_size=12)


@SETTINGS
@given(st.data())
def test_psi_equals_formula_and_jensen_shannon_equals_scipy(data):
    reference = data.draw(counts.filter(lambda c: sum(c) > 0))
    current = data.draw(st.lists(st.integers(0, 50), min_size=len(reference), max_size=len(reference)).filter(lambda c: sum(c) > 0))
    assert drift.psi(reference, current) == pytest.approx(psi_formula(reference, current), rel=1e-12, abs=1e-12)
    js = drift.jensen_shannon(reference, current)
    assert js == pytest.approx(float(distance.jensenshannon(reference, current, base=2)), rel=1e-12, abs=1e-12)
    assert 0 <= js <= 1 + 1e-12
    assert drift.psi(reference, reference) == pytest.approx(0, abs=1e-12)
    assert drift.psi(reference, current) >= -1e-12


def test_psi_uses_epsilon_for_empty_bins():
    # One empty bin on each side: (0.5 - 1e-4) * ln(0.5 / 1e-4) twice.
    expected = 2 * (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    assert drift.psi([5, 5, 0], [0, 5, 5]) == pytest.approx(expected, rel=1e-12)
    assert drift.jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)


categories = st.lists(st.sampled_from("abcde"), min_size=1, max_size=60)


@SETTINGS
@given(categories, st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=60))
def test_categorical_methods_equal_scipy_with_an_unseen_bucket(reference_values, current_values):
    reference, current = Counter(reference_values), Counter(current_values)
    names, table_reference, table_current = drift.category_table(reference, current)
    observed = np.array([[reference_values.count(c) for c in names], [current_values.count(c) for c in names]])
    if len(names) > 1:
        statistic, p_value = drift.chi_square(table_reference, table_current)
        expected = stats.chi2_contingency(observed)
        assert statistic == pytest.approx(expected.statistic, rel=1e-12, abs=1e-12)
        assert p_value == pytest.approx(expected.pvalue, rel=1e-12, abs=1e-300)

    bucket_names, bucket_reference, bucket_current = drift.category_buckets(reference, current)
    unseen = sum(1 for v in current_values if v not in reference)
    assert bucket_names[-1] == drift.UNSEEN_CATEGORY
    assert bucket_current[-1] == unseen and bucket_reference[-1] == 0
    assert sum(bucket_current) == len(current_values) and sum(bucket_reference) == len(reference_values)
    assert drift.psi(bucket_reference, bucket_current) == pytest.approx(psi_formula(bucket_reference, bucket_current), rel=1e-12, abs=1e-12)
    assert drift.jensen_shannon(bucket_reference, bucket_current) == pytest.approx(
        float(distance.jensenshannon(bucket_reference, bucket_current, base=2)), rel=1e-12, abs=1e-12)


def test_defaults_follow_reference_size_and_kind():
    assert drift.default_method("numeric", 1000) == "ks"
    assert drift.default_method("numeric", 1001) == "wasserstein"
    assert drift.default_method("categorical", 1000) == "chi_square"
    assert drift.default_method("categorical", 1001) == "jensen_shannon"
    assert drift.DEFAULT_THRESHOLDS == {"psi": 0.2, "jensen_shannon": 0.1, "wasserstein": 0.1,
                                        "ks": 0.05, "chi_square": 0.05}


def test_tests_drift_below_threshold_distances_at_or_above():
    assert drift.detected("ks", 0.3, 0.049, 0.05) and not drift.detected("ks", 0.3, 0.05, 0.05)
    assert drift.detected("psi", 0.2, None, 0.2) and not drift.detected("psi", 0.19, None, 0.2)
    with pytest.raises(ValueError):
        drift.detected("chi_square", 3.0, None, 0.05)


def test_empty_distributions_are_refused():
    with pytest.raises(ValueError):
        drift.psi([0, 0], [1, 2])
    with pytest.raises(ValueError):
        drift.jensen_shannon([1, 2], [0, 0])
    with pytest.raises(ValueError):
        drift.ks_p_value(0.5, 0, 3)


# ---- scipy.special instead of scipy.stats (memory) ----------------------------------------
def test_kstwo_sf_equals_scipy_in_every_branch() -> None:
    """kolmogorov.kstwo_sf follows kstwo.sf branch by branch: equal, not merely close."""
    from scipy import stats

    from evaljobs.drift.kolmogorov import kstwo_sf

    rng = np.random.default_rng(7)
    for n in (2, 50, 140, 141, 500, 5_000, 100_000, 100_001, 1_600_000, 10**7):
        xs = list(rng.uniform(0, 3 / np.sqrt(n), 60)) + list(rng.uniform(0, 1, 20))
        xs += [0.0, 0.4 / n, 0.5 / n, 0.9 / n, 1.0 / n, 0.5, 1 - 1 / n, 1.0]
        for x in xs:
            assert kstwo_sf(float(x), n) == float(stats.kstwo.sf(x, n)), (n, x)


def test_large_samples_need_no_scipy_stats() -> None:
    """The methods a database-sized comparison uses import scipy.special only (~50 MB less)."""
    code = (
        "import sys\n"
        "from evaljobs.drift import methods\n"
        "p = methods.ks_p_value(0.0021, 3_000_000, 3_000_000)\n"
        "q = methods.ks_p_value(0.3, 3_000_000, 2_000_000)\n"
        "c = methods.chi_square([10, 20, 30], [12, 18, 33])\n"
        "y = methods.chi_square([10, 20], [12, 18])\n"
        "j = methods.jensen_shannon([1, 2, 3], [3, 2, 1])\n"
        "sys.exit(10 if 'scipy.stats' in sys.modules or 'scipy.spatial' in sys.modules else 0)\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=2, max_size=6), st.lists(st.integers(0, 40), min_size=2, max_size=6))
def test_chi_square_and_jensen_shannon_equal_scipy(reference: list[int], current: list[int]) -> None:
    from scipy.spatial import distance
    from scipy.stats import chi2_contingency

    size = min(len(reference), len(current))
    reference, current = reference[:size], current[:size]
    assume(all(r + c > 0 for r, c in zip(reference, current)) and sum(reference) > 0 and sum(current) > 0)
    want = chi2_contingency(np.array([reference, current], dtype=float))
    statistic, p_value = drift.chi_square(reference, current)
    assert statistic == pytest.approx(float(want.statistic), rel=1e-12, abs=1e-12)
    assert p_value == pytest.approx(float(want.pvalue), rel=1e-12, abs=1e-15)
    assert drift.jensen_shannon(reference, current) == pytest.approx(
        float(distance.jensenshannon(reference, current, base=2)), rel=1e-12, abs=1e-15)
