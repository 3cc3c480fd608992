"""Drift methods as pure functions of the small summaries the database returns.

Nothing here sees a row. Numeric values arrive as per-bin counts (bins from the reference's
quantiles) plus two numbers the database computes exactly over the union of distinct values
(``sql/drift_numeric.sql``): the largest gap between the two empirical CDFs, and the area
between them. Categorical values arrive as per-category counts (``sql/drift_categorical.sql``).

Each method equals its reference on the samples those summaries came from (``tests/test_drift*.py``):

- ``psi``: Population Stability Index, ``sum((c - r) * ln(c / r))`` over bin shares, with a
  share of 0 replaced by :data:`PSI_EPSILON` (as Evidently does);
- ``jensen_shannon``: ``scipy.spatial.distance.jensenshannon(r, c, base=2)``, in [0, 1];
- ``wasserstein``: ``scipy.stats.wasserstein_distance(reference, current)`` (exact, not binned)
  divided by the reference's standard deviation (``numpy.std``, at least
  :data:`WASSERSTEIN_MIN_NORM`), as Evidently's ``wasserstein_distance_norm``;
- ``ks``: ``scipy.stats.ks_2samp(reference, current)`` with its default ``method='auto'``: the
  exact p-value when both samples have at most :data:`KS_EXACT_MAX_N` values, else the
  asymptotic one (``kstwo`` at ``n*m/(n+m)``);
- ``chi_square``: ``scipy.stats.chi2_contingency`` on the 2 x k table of category counts
  (scipy's default Yates correction applies when there are two categories).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from evaljobs.drift.catalogue import DEFAULT_THRESHOLDS, METHODS_BY_KIND, TESTS
from evaljobs.drift.kolmogorov import kstwo_sf

# scipy.stats costs ~40-50 MB of resident memory on import (more than an evaluation needs
# otherwise), so the methods use scipy.special; only the exact KS p-value of small samples
# (and kstwo's small-n branches) import scipy.stats.

#: Share used for an empty bin in PSI, so that ``ln(c / r)`` stays finite (Evidently uses the same).
PSI_EPSILON = 1e-4
#: Evidently's floor for the reference standard deviation that normalises the Wasserstein distance.
WASSERSTEIN_MIN_NORM = 1e-3
#: ``ks_2samp(method='auto')`` computes the exact p-value up to this many values per sample.
KS_EXACT_MAX_N = 10_000
#: Up to this many reference values the defaults are the tests (KS, chi-square), above it the
#: distances (Wasserstein, Jensen-Shannon): Evidently's rule, because with large samples every
#: test rejects on differences too small to matter.
SMALL_REFERENCE = 1000
#: The bucket that collects current categories the reference never had.
UNSEEN_CATEGORY = "(unseen)"


def default_method(kind: str, reference_values: int) -> str:
    """The method that decides drift when the config says ``auto`` (see :data:`SMALL_REFERENCE`)."""
    small = reference_values <= SMALL_REFERENCE
    if kind == "numeric":
        return "ks" if small else "wasserstein"
    return "chi_square" if small else "jensen_shannon"


def methods_for(kind: str) -> tuple[str, ...]:
    """Every method computed for a kind of value (all are published; one decides)."""
    return METHODS_BY_KIND[kind]


def detected(method: str, score: float, p_value: float | None, threshold: float) -> bool:
    """Drift by one method: ``p < threshold`` for tests, ``score >= threshold`` for distances."""
    if method in TESTS:
        if p_value is None:
            raise ValueError(f"method {method!r} needs a p-value")
        return p_value < threshold
    return score >= threshold


def _shares(counts: Sequence[float]) -> np.ndarray:
    array = np.asarray(counts, dtype=float)
    total = array.sum()
    if total <= 0:
        raise ValueError("a distribution needs at least one value")
    return array / total


def psi(reference_counts: Sequence[float], current_counts: Sequence[float], epsilon: float = PSI_EPSILON) -> float:
    """Population Stability Index over aligned buckets; empty buckets count as ``epsilon``."""
    if len(reference_counts) != len(current_counts):
        raise ValueError("reference and current buckets must align")
    reference = np.where(_shares(reference_counts) == 0, epsilon, _shares(reference_counts))
    current = np.where(_shares(current_counts) == 0, epsilon, _shares(current_counts))
    return float(math.fsum((current - reference) * np.log(current / reference)))


def jensen_shannon(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """Jensen-Shannon distance, base 2 (0 identical, 1 disjoint); needs no epsilon.

    The steps of ``scipy.spatial.distance.jensenshannon(p, q, base=2)``, on scipy.special's
    ``rel_entr`` (importing scipy.spatial costs ~13 MB of memory for this one function).
    """
    if len(reference_counts) != len(current_counts):
        raise ValueError("reference and current buckets must align")
    from scipy.special import rel_entr

    _shares(reference_counts), _shares(current_counts)  # refuse empty distributions
    p = np.asarray(reference_counts, dtype=float)
    q = np.asarray(current_counts, dtype=float)
    p = p / np.sum(p, axis=0, keepdims=True)
    q = q / np.sum(q, axis=0, keepdims=True)
    m = (p + q) / 2.0
    js = np.sum(rel_entr(p, m), axis=0) + np.sum(rel_entr(q, m), axis=0)
    js /= np.log(2)
    return float(np.sqrt(js / 2.0))


def chi_square(reference_counts: Sequence[int], current_counts: Sequence[int]) -> tuple[float, float]:
    """Chi-square test of homogeneity on the 2 x k table: ``(statistic, p_value)``.

    Categories must be aligned and each seen in at least one sample (no all-zero column).
    The steps of ``scipy.stats.chi2_contingency`` (Yates' correction when there is one degree
    of freedom; the p-value ``chi2.sf`` is ``scipy.special.chdtrc``), without importing
    scipy.stats, which costs ~40-50 MB of memory.
    """
    from scipy.special import chdtrc

    observed = np.array([reference_counts, current_counts], dtype=np.float64)
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0, keepdims=True) / observed.sum()
    if np.any(expected == 0):
        raise ValueError("every category needs a count in one of the samples")
    dof = expected.size - sum(expected.shape) + expected.ndim - 1
    if dof == 0:
        return 0.0, 1.0
    if dof == 1:
        diff = expected - observed
        observed = observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    statistic = float(np.sum((observed - expected) ** 2 / expected, axis=None))
    return statistic, float(chdtrc(dof, statistic))


def ks_statistic(max_gap: int, reference_values: int, current_values: int) -> float:
    """The KS statistic from the database's exact integer ``max |R(x) * m - C(x) * n|``.

    ``R`` and ``C`` are the cumulative counts of the reference (``n`` values) and the current
    sample (``m`` values) at each distinct value, so the statistic is ``max_gap / (n * m)``.
    """
    return max_gap / (reference_values * current_values)


def ks_p_value(statistic: float, reference_values: int, current_values: int) -> float:
    """The two-sided p-value ``scipy.stats.ks_2samp`` gives for this statistic and these sizes.

    Follows ks_2samp's ``method='auto'``: the exact distribution when both sizes are at most
    :data:`KS_EXACT_MAX_N` (falling back to asymptotic if the exact computation overflows,
    as ks_2samp does), else ``kstwo.sf(D, round(n*m/(n+m)))``.
    """
    n, m = reference_values, current_values
    if min(n, m) <= 0:
        raise ValueError("the KS test needs values in both samples")
    if max(n, m) <= KS_EXACT_MAX_N:
        # Small samples: scipy's own exact computation (the memory scipy.stats costs is no issue here).
        from scipy.stats._stats_py import _attempt_exact_2kssamp  # the function ks_2samp itself calls

        success, statistic, p_value = _attempt_exact_2kssamp(n, m, math.gcd(n, m), statistic, "two-sided")
        if success:
            return float(np.clip(p_value, 0.0, 1.0))
    larger, smaller = sorted([float(n), float(m)], reverse=True)
    effective = larger * smaller / (larger + smaller)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p_value = kstwo_sf(statistic, int(np.round(effective)))
    return float(np.clip(p_value, 0.0, 1.0))


def wasserstein(area: float, reference_values: int, current_values: int) -> float:
    """The 1-Wasserstein distance from the database's ``sum (x[i+1] - x[i]) * |R(x[i]) * m - C(x[i]) * n|``."""
    return area / (reference_values * current_values)


def wasserstein_norm(reference_sum_squares: float, reference_values: int) -> float:
    """The normaliser: the reference's population standard deviation, floored as Evidently does."""
    return max(math.sqrt(max(reference_sum_squares, 0.0) / reference_values), WASSERSTEIN_MIN_NORM)


def category_buckets(
    reference: Mapping[str, int], current: Mapping[str, int]
) -> tuple[list[str], list[int], list[int]]:
    """Align category counts for PSI and Jensen-Shannon: the reference's categories (sorted),
    then one :data:`UNSEEN_CATEGORY` bucket holding every current category the reference lacks."""
    names = sorted(reference)
    unseen = sum(count for name, count in current.items() if name not in reference)
    return (
        names + [UNSEEN_CATEGORY],
        [reference[name] for name in names] + [0],
        [current.get(name, 0) for name in names] + [unseen],
    )


def category_table(
    reference: Mapping[str, int], current: Mapping[str, int]
) -> tuple[list[str], list[int], list[int]]:
    """Align category counts over the union of categories (for chi-square: no merging)."""
    names = sorted(set(reference) | set(current))
    return names, [reference.get(name, 0) for name in names], [current.get(name, 0) for name in names]


@dataclass(frozen=True)
class Comparison:
    """Everything a method sees of one value compared with its reference: small summaries only.

    ``reference_counts``/``current_counts`` are aligned buckets (quantile bins, or categories
    with an unseen bucket). Ordered (numeric) values add the exact ``max_gap`` and ``area``
    over all distinct values; categorical ones add ``table``, the union of categories.
    """

    reference_counts: Sequence[float]
    current_counts: Sequence[float]
    reference_values: int
    current_values: int
    max_gap: int | None = None
    area: float | None = None
    reference_sum_squares: float | None = None
    table: tuple[Sequence[int], Sequence[int]] | None = None


def _psi(c: Comparison) -> tuple[float, float | None]:
    return psi(c.reference_counts, c.current_counts), None


def _jensen_shannon(c: Comparison) -> tuple[float, float | None]:
    return jensen_shannon(c.reference_counts, c.current_counts), None


def _wasserstein(c: Comparison) -> tuple[float, float | None]:
    assert c.area is not None
    return (wasserstein(c.area, c.reference_values, c.current_values)
            / wasserstein_norm(c.reference_sum_squares or 0.0, c.reference_values)), None


def _ks(c: Comparison) -> tuple[float, float | None]:
    assert c.max_gap is not None
    statistic = ks_statistic(c.max_gap, c.reference_values, c.current_values)
    return statistic, ks_p_value(statistic, c.reference_values, c.current_values)


def _chi_square(c: Comparison) -> tuple[float, float | None]:
    assert c.table is not None
    return chi_square(*c.table)


#: Each method of :data:`evaljobs.drift.catalogue.METHODS` as ``(score, p_value)`` of a comparison.
STATISTICS: dict[str, Callable[[Comparison], tuple[float, float | None]]] = {
    "psi": _psi,
    "jensen_shannon": _jensen_shannon,
    "wasserstein": _wasserstein,
    "ks": _ks,
    "chi_square": _chi_square,
}


def statistics(kind: str, comparison: Comparison) -> list[tuple[str, float, float | None]]:
    """``(method, score, p_value)`` of every method that applies to ``kind``, in catalogue order."""
    return [(name, *STATISTICS[name](comparison)) for name in methods_for(kind)]


__all__ = [
    "STATISTICS",
    "Comparison",
    "statistics",
    "DEFAULT_THRESHOLDS",
    "KS_EXACT_MAX_N",
    "PSI_EPSILON",
    "SMALL_REFERENCE",
    "UNSEEN_CATEGORY",
    "WASSERSTEIN_MIN_NORM",
    "category_buckets",
    "category_table",
    "chi_square",
    "default_method",
    "detected",
    "jensen_shannon",
    "ks_p_value",
    "ks_statistic",
    "methods_for",
    "psi",
    "wasserstein",
    "wasserstein_norm",
]
