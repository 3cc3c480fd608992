"""Numeric drift from fine histograms (``sql/drift_numeric_binned.sql``), with a stated error bound.

Pure functions over small arrays: the database returns, per sample (the reference, and each
version of the window), the count, smallest and largest value of each fine bin (bins in value
order), and this module turns them into the same summaries the exact query gives
(:class:`~evaljobs.drift.queries.NumericSummaries`): quantile-bin counts for PSI and
Jensen-Shannon, the KS gap and the Wasserstein area, plus how far each can be from the exact one.

Why the bounds hold. Let ``R(x)``/``C(x)`` be the reference's and the version's cumulative
counts (``n`` and ``m`` values). At the end of every bin they are exact, and between two bins
(from one bin's largest value to the next bin's smallest) nothing changes, so:

* KS: ``max |R*m - C*n|`` over the bin ends is a lower bound of the exact maximum; inside a bin
  ``R`` lies between its values at the bin's two ends, and so does ``C``, so the gap there is at
  most ``U = max(|R1*m - C0*n|, |R0*m - C1*n|)`` (0 = before the bin, 1 = after). The reported
  statistic is the lower bound; ``ks_error`` = (largest ``U`` - it) / (n*m) >= exact - reported.
* Wasserstein (the area between the ECDFs): exact between bins; inside a bin of span ``w`` the
  midpoint estimate ``(gap0 + gap1) / 2 * w`` is used. The gap there stays in ``[0, U]`` and
  within ``max(r*m, c*n)`` of both end gaps (``r``, ``c``: the bin's counts), so the error is at
  most ``w * min(max(r*m, c*n), max(estimate / w, U - estimate / w))`` per bin; over all bins,
  normalised, about ``sum w * max(share)``: ~0.5% of the mean |value - centre| for the default
  bins. The bounds are measured on the bins built, so they hold for any centre; one near the
  middle of the data (a sample's median, or the mean) keeps the bins, and the bounds, small.
* A bin that holds a single distinct value (its smallest equals its largest, over both samples)
  adds no error: when every bin does, all numbers equal the exact query's exactly.
* Quantile bins (PSI, JS): the exact query's rule applied to fine bins instead of distinct values
  (bin k holds the fine bins with ``t_k <= R(before) < t_(k+1)``); their edges are fine-bin
  edges, so they can differ from the exact quantiles by up to one fine bin.
* The reference mean and standard deviation (the Wasserstein normaliser) merge per-bin sums of
  distances from the centre and of their squares (Chan et al.); centred, they keep full
  floating-point precision (tested against numpy at 1e-9).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

#: Relative width of a fine bin (about 0.5% of its distance from the centre): ~200 bins per
#: factor e of the distance.
SCALE = 200.0
#: Values nearer the centre than this (relative to the centre's own size, at least 1) share bin 0.
MIN_MAGNITUDE = 1e-9
#: Beyond this magnitude squares could overflow: the caller computes exactly instead.
LARGEST_SQUARED = 1e150
#: How many reference values the median that centres the bins is taken from (a predictions
#: reference, ``sql/drift_numeric_center_sample.sql``): a few reads through the time index.
CENTER_SAMPLE = 1001


@dataclass
class FineBin:
    n: int
    smallest: float
    largest: float
    sum_values: float
    sum_squares: float | None


@dataclass
class Histogram:
    """One sample's fine bins (bin number -> bin), NULL and non-finite counts. The bins' sums
    are of the distances from ``center``."""

    bins: dict[int, FineBin] = field(default_factory=dict)
    nulls: int = 0
    non_finite: int = 0
    center: float = 0.0

    @property
    def values(self) -> int:
        return sum(b.n for b in self.bins.values())


def query_params(center: float | None) -> dict[str, float]:
    """The bound values ``sql/drift_numeric_binned.sql`` needs, around ``center``
    (:meth:`evaljobs.drift.queries.DriftSource.center`)."""
    import math

    centre = 0.0 if center is None else float(center)
    smallest = MIN_MAGNITUDE * max(1.0, abs(centre))
    return {"center": centre, "scale": SCALE, "min_magnitude": smallest, "ln_min_magnitude": math.log(smallest)}


def histograms(rows: Iterable[Any], center: float = 0.0) -> tuple[Histogram, dict[str, Histogram]]:
    """The reference's and each version's histogram from the query's rows."""
    reference = Histogram(center=center)
    versions: dict[str, Histogram] = {}
    for row in rows:
        target = reference if row.is_reference else versions.setdefault(row.model_version, Histogram(center=center))
        if row.state == 1:
            target.nulls += int(row.n)
        elif row.state == 2:
            target.non_finite += int(row.n)
        else:
            target.bins[int(row.bin)] = FineBin(
                int(row.n), float(row.smallest), float(row.largest), float(row.sum_values),
                None if row.sum_squares is None else float(row.sum_squares))
    return reference, versions


@dataclass(frozen=True)
class ReferenceBins:
    """A reference's fine histogram and the centre it was binned around: all the binned mode
    needs of the reference, small enough to store (a ``baseline`` or ``table`` reference's, in
    the results store, :mod:`evaljobs.ops.incremental`). The centre is the one the bins were
    laid around (None without finite values), kept so the window is binned on the same edges."""

    center: float | None
    histogram: Histogram

    def to_payload(self) -> str:
        import json

        h = self.histogram
        # JSON writes a float's shortest repr, which reads back as the same float.
        return json.dumps({"center": self.center, "nulls": h.nulls, "non_finite": h.non_finite,
                           "bins": [[k, b.n, b.smallest, b.largest, b.sum_values, b.sum_squares]
                                    for k, b in sorted(h.bins.items())]}, separators=(",", ":"))

    @classmethod
    def from_payload(cls, text: str) -> "ReferenceBins":
        import json

        data = json.loads(text)
        center = None if data["center"] is None else float(data["center"])
        histogram = Histogram(
            bins={int(k): FineBin(int(n), float(lo), float(hi), float(s), None if q is None else float(q))
                  for k, n, lo, hi, s, q in data["bins"]},
            nulls=int(data["nulls"]), non_finite=int(data["non_finite"]),
            center=query_params(center)["center"])
        return cls(center, histogram)


def too_large(histogram: Histogram) -> bool:
    """True when a distance is beyond :data:`LARGEST_SQUARED` (its square was not summed)."""
    return any(b.sum_squares is None for b in histogram.bins.values())


@dataclass(frozen=True)
class ReferenceMoments:
    values: int
    distinct: int  # exact when every bin holds one value, else a lower bound (at least 2)
    minimum: float | None
    mean: float | None
    sum_squares: float | None
    exact_distinct: bool


def reference_moments(reference: Histogram) -> ReferenceMoments:
    """Count, distinct count (or a lower bound), minimum, mean and sum of squared deviations."""
    bins = list(reference.bins.values())
    n = sum(b.n for b in bins)
    if n == 0:
        return ReferenceMoments(0, 0, None, None, None, True)
    import math

    # math.fsum: correctly rounded, so the moments do not depend on the order the database
    # returned the bins in (a stored reference's bins come back in key order).
    offset = math.fsum(b.sum_values for b in bins) / n  # the mean's distance from the centre
    m2 = math.fsum(max((b.sum_squares or 0.0) - b.sum_values * b.sum_values / b.n, 0.0)
                   + b.n * (b.sum_values / b.n - offset) ** 2 for b in bins)
    mean = reference.center + offset
    single = all(b.smallest == b.largest for b in bins)
    distinct = len(bins) if single else max(len(bins) + 1, 2)
    return ReferenceMoments(n, distinct, min(b.smallest for b in bins), mean, m2, single)


@dataclass(frozen=True)
class BinnedComparison:
    """One version against the reference: quantile bins, KS gap, area, and their error bounds."""

    quantile_bins: tuple[tuple[float | None, int, int], ...]  # (upper edge or None, reference, current)
    max_gap: int
    area: float
    ks_error: float  # in KS-statistic units (a share)
    area_error: float  # in the same units as area (n * m * distance)
    exact: bool


def compare(reference: Histogram, current: Histogram, quantile_bins: int) -> BinnedComparison:
    """Merge the two histograms in value order (see the module docstring for the bounds)."""
    n, m = reference.values, current.values
    keys = sorted(set(reference.bins) | set(current.bins))
    r_total = c_total = 0
    previous_gap = 0
    previous_largest: float | None = None
    max_gap = upper = 0
    area = area_error = 0.0
    exact = True
    coarse: dict[int, list] = {}
    for key in keys:
        ref, cur = reference.bins.get(key), current.bins.get(key)
        present = [b for b in (ref, cur) if b is not None]
        smallest = min(b.smallest for b in present)
        largest = max(b.largest for b in present)
        r_before, c_before = r_total, c_total
        r_total += ref.n if ref else 0
        c_total += cur.n if cur else 0
        gap = abs(r_total * m - c_total * n)
        if previous_largest is not None:
            area += previous_gap * (smallest - previous_largest)
        if largest > smallest:
            exact = False
            inside = max(previous_gap, gap, abs(r_total * m - c_before * n), abs(r_before * m - c_total * n))
            upper = max(upper, inside)
            width = largest - smallest
            estimate = (previous_gap + gap) / 2 * width
            area += estimate
            # Inside the bin R*m - C*n moves from its value before the bin by at most r*m one way
            # and c*n the other, so |gap| stays within max(r*m, c*n) of both ends' gaps (and of
            # their mean); and it never leaves [0, inside]. The smaller bound holds.
            moved = max((ref.n if ref else 0) * m, (cur.n if cur else 0) * n)
            area_error += min(moved * width, max(estimate, inside * width - estimate))
        max_gap = max(max_gap, gap)
        previous_gap, previous_largest = gap, largest
        # The exact query's quantile-bin rule, on fine bins: by the reference count below.
        index = min(quantile_bins - 1, (r_before * quantile_bins) // n) if n else 0
        entry = coarse.setdefault(index, [None, 0, 0])
        entry[0] = largest
        entry[1] += ref.n if ref else 0
        entry[2] += cur.n if cur else 0
    bins = tuple((None if index == quantile_bins - 1 else edge, r, c)
                 for index, (edge, r, c) in sorted(coarse.items()))
    ks_error = (max(upper, max_gap) - max_gap) / (n * m) if n and m else 0.0
    return BinnedComparison(bins, max_gap, area, ks_error, area_error, exact)


def normalised_area_error(compared: BinnedComparison, reference: ReferenceMoments, current_values: int) -> float:
    """The Wasserstein distance's error bound once normalised by the reference's standard
    deviation (floored at 1e-3, as :func:`evaljobs.drift.methods.wasserstein_norm` does)."""
    import math

    if not reference.values or not current_values:
        return 0.0
    norm = max(math.sqrt(max(reference.sum_squares or 0.0, 0.0) / reference.values), 1e-3)
    return compared.area_error / (reference.values * current_values) / norm


__all__ = ["normalised_area_error", "BinnedComparison", "Histogram", "ReferenceBins", "ReferenceMoments", "compare", "histograms", "query_params",
           "reference_moments", "too_large"]
