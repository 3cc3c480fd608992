"""Classification metrics as pure functions of small aggregates the database returns.

Everything here takes counts or sums (never rows) and matches scikit-learn on the rows
those counts came from, with scikit-learn's ``zero_division=0`` convention: a ratio whose
denominator is zero is 0, except where no labelled prediction exists at all, in which case
there is no metric (``None``) rather than a made-up 0/0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

#: scikit-learn's ``log_loss`` clips probabilities to ``[eps, 1 - eps]`` with float64's eps.
LOG_LOSS_EPS = float.fromhex("0x1.0p-52")

Confusion = Mapping[tuple[str, str], int]
"""Counts keyed by ``(actual, predicted)`` class."""


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall and F1 of one class, with its support (true count) and predicted count."""

    precision: float
    recall: float
    f1: float
    support: int
    predicted: int


@dataclass(frozen=True)
class Averages:
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class ClassificationMetrics:
    """Everything derived from one confusion matrix."""

    classes: tuple[str, ...]
    labeled: int
    accuracy: float
    per_class: Mapping[str, ClassScores]
    macro: Averages
    micro: Averages
    weighted: Averages


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def classification_metrics(confusion: Confusion) -> ClassificationMetrics | None:
    """Accuracy, per-class and averaged precision/recall/F1 from confusion counts.

    Classes are the union of actual and predicted classes (as scikit-learn's ``labels=None``),
    so a class seen only in labels or only in predictions counts in the macro average.
    Returns ``None`` when there are no labelled predictions.
    """
    cells = {key: int(count) for key, count in confusion.items() if count}
    labeled = sum(cells.values())
    if labeled == 0:
        return None
    classes = tuple(sorted({actual for actual, _ in cells} | {predicted for _, predicted in cells}))
    true_positive = {c: cells.get((c, c), 0) for c in classes}
    support = {c: 0 for c in classes}
    predicted = {c: 0 for c in classes}
    for (actual, guess), count in cells.items():
        support[actual] += count
        predicted[guess] += count

    per_class = {}
    for c in classes:
        tp = true_positive[c]
        # F1 as 2tp / (2tp + fp + fn), which is how scikit-learn computes it (and 0 when tp = 0).
        per_class[c] = ClassScores(
            precision=_ratio(tp, predicted[c]),
            recall=_ratio(tp, support[c]),
            f1=_ratio(2 * tp, predicted[c] + support[c]),
            support=support[c],
            predicted=predicted[c],
        )

    correct = sum(true_positive.values())
    accuracy = correct / labeled
    n = len(classes)
    macro = Averages(
        precision=math.fsum(s.precision for s in per_class.values()) / n,
        recall=math.fsum(s.recall for s in per_class.values()) / n,
        f1=math.fsum(s.f1 for s in per_class.values()) / n,
    )
    weighted = Averages(
        precision=math.fsum(s.precision * s.support for s in per_class.values()) / labeled,
        recall=math.fsum(s.recall * s.support for s in per_class.values()) / labeled,
        f1=math.fsum(s.f1 * s.support for s in per_class.values()) / labeled,
    )
    # With every class included, micro-averaged precision, recall and F1 all equal accuracy.
    micro = Averages(precision=accuracy, recall=accuracy, f1=accuracy)
    return ClassificationMetrics(classes, labeled, accuracy, per_class, macro, micro, weighted)


def label_coverage(labeled: int, total: int) -> float | None:
    """Share of the window's predictions that have a label; ``None`` for an empty window."""
    return labeled / total if total else None


def roc_auc(twice_mann_whitney_u: int, positives: int, negatives: int) -> float | None:
    """Exact, tie-aware ROC AUC from the Mann-Whitney statistic.

    ``twice_mann_whitney_u`` is ``sum over positives of (2 * negatives scored lower + negatives
    scored equal)``, an integer the database computes from ranks (``sql/roc_auc.sql``). AUC is
    undefined (``None``) when either class is absent, where scikit-learn raises.
    """
    if positives == 0 or negatives == 0:
        return None
    return twice_mann_whitney_u / (2 * positives * negatives)


def log_loss(sum_log_likelihood: float, count: int) -> float | None:
    """Binary cross-entropy from the summed log-likelihood ``sum ln(p if positive else 1-p)``.

    ``p`` is clipped to ``[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]`` by the query, as scikit-learn does.
    """
    if count == 0:
        return None
    return -sum_log_likelihood / count


def brier_score(sum_squared_error: float, count: int) -> float | None:
    """Mean squared difference between the positive-class probability and the 0/1 outcome."""
    if count == 0:
        return None
    return sum_squared_error / count
