"""Confidence-based performance estimation (CBPE): pure maths over small count arrays.

If the scores are calibrated, the expected confusion matrix of unlabelled predictions follows
from the scores alone (NannyML's CBPE): expected TP = sum of the calibrated score over predicted
positives, FP = sum of (1 - score) over them, FN and TN likewise over predicted negatives.

Everything here works on score *bins* (equal width, ``floor(score * bins)``) counted in SQL:

- the calibration map is learned from the labelled reference's per-bin counts, by histogram
  binning (each bin's positive rate) or isotonic regression (pool-adjacent-violators over the
  bins, weighted by their counts: isotonic regression of the label on the bin);
- a map is constant within a bin, so the expected matrix and the expected ROC AUC of a window
  follow exactly from its per-(bin, predicted class) counts. With ``calibrated: true`` the scores
  themselves are used: the matrix is exact (sums of scores), the ROC AUC treats each bin as a
  tie, within :func:`roc_auc_bin_bound` of the value over the raw scores.

Uncertainty: the realised value differs from the estimate because each outcome is a Bernoulli
draw (variance p(1 - p) per prediction) and because the map's rates are estimated from a finite
reference (variance r(1 - r)/n per fitted block). Both enter a delta-method standard error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass



@dataclass(frozen=True)
class CalibrationMap:
    """Calibrated probability per score bin, and the blocks the values were fitted over.

    ``blocks[b]`` is the fitted block of bin ``b`` (bins of one block share one estimated rate,
    so their errors are the same random variable); ``block_rows``/``block_positives`` are the
    reference counts behind each block. Bins without reference rows take a value interpolated
    between their neighbours and borrow the nearest block's uncertainty.
    """

    values: tuple[float, ...]
    blocks: tuple[int, ...]
    block_rows: tuple[int, ...]
    block_positives: tuple[int, ...]

    @property
    def bins(self) -> int:
        return len(self.values)

    def block_variance(self, block: int) -> float:
        """Variance of a block's fitted rate; (pos + 1)/(n + 2) keeps it above 0 at rates 0 and 1."""
        n, positives = self.block_rows[block], self.block_positives[block]
        rate = (positives + 1) / (n + 2)
        return rate * (1 - rate) / n


def score_bin(score: float, bins: int) -> int:
    """The bin of a score, exactly as ``sql/fragments/score_bin.sql`` computes it."""
    if score >= 1:
        return bins - 1
    if score <= 0:
        return 0
    return int(math.floor(score * bins))


def histogram_binning(rows: Sequence[int], positives: Sequence[int]) -> CalibrationMap:
    """Each bin's observed positive rate (empty bins interpolated)."""
    occupied = [b for b, n in enumerate(rows) if n > 0]
    return _map_from_blocks(len(rows), [[b] for b in occupied], rows, positives)


def isotonic(rows: Sequence[int], positives: Sequence[int]) -> CalibrationMap:
    """Isotonic (non-decreasing) regression of the label on the bin: pool adjacent violators,
    each bin weighted by its reference rows (empty bins interpolated)."""
    blocks: list[list[int]] = []
    counts: list[tuple[int, int]] = []  # (rows, positives) per block
    for b, n in enumerate(rows):
        if n <= 0:
            continue
        blocks.append([b])
        counts.append((n, positives[b]))
        # Merge while the last block's rate is below the one before it.
        while len(counts) > 1 and counts[-1][1] * counts[-2][0] < counts[-2][1] * counts[-1][0]:
            n2, p2 = counts.pop()
            bins2 = blocks.pop()
            n1, p1 = counts[-1]
            counts[-1] = (n1 + n2, p1 + p2)
            blocks[-1].extend(bins2)
    return _map_from_blocks(len(rows), blocks, rows, positives)


def _map_from_blocks(bins: int, blocks: list[list[int]], rows: Sequence[int],
                     positives: Sequence[int]) -> CalibrationMap:
    if not blocks:
        raise ValueError("the calibration reference has no labelled, scored predictions")
    block_rows = [sum(rows[b] for b in block) for block in blocks]
    block_positives = [sum(positives[b] for b in block) for block in blocks]
    value_of: dict[int, float] = {}
    block_of: dict[int, int] = {}
    for i, block in enumerate(blocks):
        for b in block:
            value_of[b] = block_positives[i] / block_rows[i]
            block_of[b] = i
    known = sorted(value_of)
    values, block_ids = [], []
    for b in range(bins):
        if b in value_of:
            values.append(value_of[b])
            block_ids.append(block_of[b])
            continue
        lower = max((k for k in known if k < b), default=None)
        upper = min((k for k in known if k > b), default=None)
        if lower is None or upper is None:
            nearest = upper if lower is None else lower
            values.append(value_of[nearest])  # clipped at the ends, as isotonic regression does
            block_ids.append(block_of[nearest])
        else:
            weight = (b - lower) / (upper - lower)
            values.append(value_of[lower] * (1 - weight) + value_of[upper] * weight)
            block_ids.append(block_of[lower] if weight <= 0.5 else block_of[upper])
    return CalibrationMap(tuple(values), tuple(block_ids), tuple(block_rows), tuple(block_positives))


def expected_calibration_error(rows: Sequence[int], positives: Sequence[int], sum_scores: Sequence[float]) -> float | None:
    """ECE of raw scores over equal-width bins: sum over bins of |sum of scores - positives| / all rows
    (the rows-weighted mean gap between a bin's mean score and its positive rate)."""
    total = sum(rows)
    if not total:
        return None
    return sum(abs(s - p) for n, p, s in zip(rows, positives, sum_scores) if n) / total


@dataclass(frozen=True)
class Cell:
    """Predictions of one score bin and predicted class (positive or not) in a window.

    ``sum_score`` and ``sum_score_variance`` (sum of p(1 - p)) are of the raw scores; they are
    used when the scores are declared calibrated (no map).
    """

    bin: int
    predicted_positive: bool
    predictions: int
    sum_score: float = 0.0
    sum_score_variance: float = 0.0


@dataclass(frozen=True)
class Estimated:
    """One estimated value with its standard error and a two-sided interval, clipped to [0, 1]."""

    value: float | None
    standard_error: float | None
    lower: float | None
    upper: float | None


@dataclass(frozen=True)
class Estimate:
    """The expected confusion matrix of a window and the metrics that follow from it.

    ``positive``/``negative`` hold precision, recall and F1 of each class; ``roc_auc_bound``
    is the largest possible difference from the AUC over raw scores (0 with a map).
    """

    predictions: int
    true_positives: float
    false_positives: float
    false_negatives: float
    true_negatives: float
    accuracy: Estimated
    positive: dict[str, Estimated]
    negative: dict[str, Estimated]
    roc_auc: Estimated
    roc_auc_bound: float | None


_EMPTY = Estimated(None, None, None, None)


def estimate(cells: Sequence[Cell], calibration: CalibrationMap | None, confidence: float = 0.95) -> Estimate:
    """CBPE over a window's cells; ``calibration`` None means the raw scores are calibrated."""
    # Imported here: scipy.stats costs ~45 MB and seconds of start-up, and every evaluation
    # imports this module (runner -> estimation), estimate or not.
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2))
    expected_a = expected_b = 0.0  # expected positives among predicted positives (A) / negatives (B)
    var_a = var_b = 0.0  # sampling variance of the outcomes
    k = m = 0  # predicted positives / negatives
    # Map uncertainty: per block, the predicted positives and negatives that share its rate.
    block_a: dict[int, int] = {}
    block_b: dict[int, int] = {}
    per_bin: dict[int, list[float]] = {}  # bin -> [expected positives, expected negatives]
    for cell in cells:
        if calibration is None:
            expected, variance = cell.sum_score, cell.sum_score_variance
        else:
            rate = calibration.values[cell.bin]
            expected, variance = cell.predictions * rate, cell.predictions * rate * (1 - rate)
            block = calibration.blocks[cell.bin]
            target = block_a if cell.predicted_positive else block_b
            target[block] = target.get(block, 0) + cell.predictions
        if cell.predicted_positive:
            expected_a, var_a, k = expected_a + expected, var_a + variance, k + cell.predictions
        else:
            expected_b, var_b, m = expected_b + expected, var_b + variance, m + cell.predictions
        slot = per_bin.setdefault(cell.bin, [0.0, 0.0])
        slot[0] += expected
        slot[1] += cell.predictions - expected
    n = k + m
    if n == 0:
        return Estimate(0, 0.0, 0.0, 0.0, 0.0, _EMPTY, {}, {}, _EMPTY, None)
    cov_aa, cov_bb, cov_ab = var_a, var_b, 0.0
    if calibration is not None:
        for block in set(block_a) | set(block_b):
            v = calibration.block_variance(block)
            ka, kb = block_a.get(block, 0), block_b.get(block, 0)
            cov_aa += ka * ka * v
            cov_bb += kb * kb * v
            cov_ab += ka * kb * v
    covariance = (cov_aa, cov_bb, cov_ab)

    def with_interval(f: Callable[[float, float], float | None]) -> Estimated:
        return _delta(f, expected_a, expected_b, covariance, z)

    # TP = A, FP = k - A, FN = B, TN = m - B.
    accuracy = with_interval(lambda a, b: (a + m - b) / n)
    positive = {
        "precision": with_interval(lambda a, b: a / k if k else None),
        "recall": with_interval(lambda a, b: a / (a + b) if a + b > 0 else None),
        "f1": with_interval(lambda a, b: 2 * a / (k + a + b) if k + a + b > 0 else None),
    }
    negative = {
        "precision": with_interval(lambda a, b: (m - b) / m if m else None),
        "recall": with_interval(lambda a, b: (m - b) / (m - b + k - a) if m - b + k - a > 0 else None),
        "f1": with_interval(lambda a, b: 2 * (m - b) / (m + (m - b) + (k - a)) if m + (m - b) + (k - a) > 0 else None),
    }
    auc, bound = expected_roc_auc([per_bin[b] for b in sorted(per_bin)])
    if auc is None:
        roc = _EMPTY
    else:
        se = hanley_mcneil_se(auc, expected_a + expected_b, n - expected_a - expected_b)
        roc = _interval(auc, se, z)
    return Estimate(n, expected_a, k - expected_a, expected_b, m - expected_b, accuracy, positive, negative,
                    roc, bound if calibration is None else 0.0)


def _delta(f: Callable[[float, float], float | None], a: float, b: float,
           covariance: tuple[float, float, float], z: float) -> Estimated:
    """A function of the expected counts (A, B), its delta-method standard error and interval."""
    value = f(a, b)
    if value is None:
        return _EMPTY
    cov_aa, cov_bb, cov_ab = covariance
    # Central differences: the metrics are smooth rational functions of A and B.
    h = 1e-4 * max(1.0, a + b)
    try:
        da = (f(a + h, b) - f(a - h, b)) / (2 * h)  # type: ignore[operator]
        db = (f(a, b + h) - f(a, b - h)) / (2 * h)  # type: ignore[operator]
    except (TypeError, ZeroDivisionError):
        return Estimated(value, None, None, None)
    variance = da * da * cov_aa + db * db * cov_bb + 2 * da * db * cov_ab
    return _interval(value, math.sqrt(max(variance, 0.0)), z)


def _interval(value: float, se: float | None, z: float) -> Estimated:
    if se is None:
        return Estimated(value, None, None, None)
    return Estimated(value, se, max(0.0, value - z * se), min(1.0, value + z * se))


def expected_roc_auc(bins: Sequence[Sequence[float]]) -> tuple[float | None, float]:
    """Expected ROC AUC from ``[expected positives, expected negatives]`` per bin, bins in
    increasing score order; predictions within a bin count as ties (one half).

    Returns the AUC and the bound on its difference from the AUC over ungrouped scores: at most
    half of the within-bin pairs, ``sum(P_b * N_b) / (2 * P * N)``.
    """
    total_p = sum(p for p, _ in bins)
    total_n = sum(q for _, q in bins)
    denominator = 2 * total_p * total_n
    if not denominator > 0:  # no expected positives or negatives (or their product underflows)
        return None, 0.0
    below = 0.0
    twice_u = 0.0
    tied = 0.0
    for p, q in bins:
        twice_u += p * (2 * below + q)
        tied += p * q
        below += q
    return twice_u / denominator, tied / denominator


def hanley_mcneil_se(auc: float, positives: float, negatives: float) -> float | None:
    """Standard error of an AUC (Hanley and McNeil, 1982) from the (expected) class sizes."""
    if positives <= 1 or negatives <= 1:
        return None
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc)
                + (negatives - 1) * (q2 - auc * auc)) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))


def realised_accuracy(cells: Sequence[tuple[bool, int, int]]) -> float | None:
    """Accuracy of labelled cells ``(predicted_positive, predictions, positives)``."""
    n = sum(c[1] for c in cells)
    if not n:
        return None
    correct = sum(positives if predicted else predictions - positives for predicted, predictions, positives in cells)
    return correct / n


# ---- multiclass: one-vs-rest ------------------------------------------------------------------
@dataclass(frozen=True)
class MulticlassEstimate:
    """CBPE of a multiclass window, one-vs-rest: class ``c``'s calibrated probability is its own
    map of its own probability column, so each class is a binary estimate (``per_class``).

    ``accuracy`` is the expected share of predictions whose predicted class is right (the mean
    calibrated probability of the predicted class); ``macro`` the unweighted means over classes of
    precision, recall and F1 (an undefined class value counts as 0, as in NannyML and scikit-learn's
    ``zero_division=0``); ``roc_auc`` the mean of the one-vs-rest AUCs (``multi_class='ovr'``,
    ``average='macro'``).
    """

    predictions: int
    per_class: dict[str, Estimate]
    accuracy: Estimated
    macro: dict[str, Estimated]
    roc_auc: Estimated
    roc_auc_bound: float | None


def multiclass_estimate(cells: dict[str, Sequence[Cell]], calibration: dict[str, CalibrationMap | None],
                        confidence: float = 0.95) -> MulticlassEstimate:
    """CBPE of a window from each class's one-vs-rest cells.

    ``cells[c]`` bins the window's scored predictions by class ``c``'s probability, with
    ``predicted_positive`` meaning "predicted ``c``"; every class sees every prediction once.
    ``calibration[c]`` None means class ``c``'s probabilities are calibrated as they are.

    Intervals: a class's precision, recall and F1 have the binary delta-method standard errors
    (only that class's indicator enters them). Accuracy's sampling variance is exact (each
    prediction contributes the variance of its predicted class's indicator); the maps' variances
    are combined by the Cauchy-Schwarz bound (the maps of different classes are fitted on the
    same reference rows, so their covariance is unknown from one-vs-rest counts), and so are the
    macro averages' errors: sd(mean of X_c) <= mean of sd(X_c). Both err on the wide side.
    """
    from scipy.stats import norm  # imported here, as in estimate(): scipy.stats is heavy at start-up

    z = float(norm.ppf(0.5 + confidence / 2))
    classes = sorted(cells)
    per_class = {c: estimate(cells[c], calibration.get(c), confidence) for c in classes}
    n = max((e.predictions for e in per_class.values()), default=0)
    if n == 0:
        return MulticlassEstimate(0, per_class, _EMPTY, {}, _EMPTY, None)
    correct = sum(per_class[c].true_positives for c in classes)
    sampling, map_sd = 0.0, 0.0
    for c in classes:
        s, m = _predicted_class_variance(cells[c], calibration.get(c))
        sampling += s
        map_sd += math.sqrt(m)
    accuracy = _interval(correct / n, math.sqrt(sampling + map_sd * map_sd) / n, z)
    macro = {name: _mean_of([per_class[c].positive.get(name, _EMPTY) for c in classes], z)
             for name in ("precision", "recall", "f1")}
    aucs = [per_class[c].roc_auc for c in classes]
    if any(a.value is None for a in aucs):
        roc, bound = _EMPTY, None
    else:
        roc = _mean_of(aucs, z)
        bounds = [per_class[c].roc_auc_bound or 0.0 for c in classes]
        bound = sum(bounds) / len(bounds)
    return MulticlassEstimate(n, per_class, accuracy, macro, roc, bound)


def _predicted_class_variance(cells: Sequence[Cell], calibration: CalibrationMap | None) -> tuple[float, float]:
    """Sampling variance of the expected correct predictions of one class (its predicted-positive
    cells), and the variance its map's fitted rates add."""
    sampling = 0.0
    per_block: dict[int, int] = {}
    for cell in cells:
        if not cell.predicted_positive:
            continue
        if calibration is None:
            sampling += cell.sum_score_variance
            continue
        rate = calibration.values[cell.bin]
        sampling += cell.predictions * rate * (1 - rate)
        block = calibration.blocks[cell.bin]
        per_block[block] = per_block.get(block, 0) + cell.predictions
    mapped = sum(k * k * calibration.block_variance(b) for b, k in per_block.items()) if calibration else 0.0
    return sampling, mapped


def _mean_of(values: Sequence[Estimated], z: float) -> Estimated:
    """The mean of per-class values (undefined ones as 0), its error the mean of theirs (an upper bound)."""
    if not values:
        return _EMPTY
    mean = sum(v.value or 0.0 for v in values) / len(values)
    errors = [v.standard_error for v in values if v.value is not None]
    if any(e is None for e in errors):
        return Estimated(mean, None, None, None)
    return _interval(mean, sum(errors) / len(values), z)  # type: ignore[arg-type]


def realised_multiclass_accuracy(cells: dict[str, Sequence[tuple[Cell, int]]]) -> float | None:
    """Accuracy of labelled one-vs-rest cells ``class -> [(cell, positives)]``: the positives of
    a class's predicted-positive cells are its correct predictions; every class's cells hold
    every prediction once, so any one class gives the total."""
    if not cells:
        return None
    n = sum(cell.predictions for cell, _ in next(iter(cells.values())))
    if not n:
        return None
    correct = sum(p for class_cells in cells.values() for cell, p in class_cells if cell.predicted_positive)
    return correct / n
