"""The pure metric functions against scikit-learn, property-based."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from evaljobs.quality.metrics import (
    LOG_LOSS_EPS,
    brier_score,
    classification_metrics,
    label_coverage,
    log_loss,
    roc_auc,
)

CLASSES = ["a", "b", "c", "d", "e"]
TOL = 1e-9

pairs = st.lists(st.tuples(st.sampled_from(CLASSES), st.sampled_from(CLASSES)), min_size=1, max_size=200)


def sklearn_view(y_true: list[str], y_pred: list[str]) -> dict:
    labels = sorted(set(y_true) | set(y_pred))
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    out = {"labels": labels, "per_class": {c: (p[i], r[i], f[i], s[i]) for i, c in enumerate(labels)},
           "accuracy": skm.accuracy_score(y_true, y_pred)}
    for average in ("macro", "micro", "weighted"):
        out[average] = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average,
                                                           zero_division=0)[:3]
    return out


@settings(max_examples=300, deadline=None)
@given(pairs)
def test_classification_metrics_equal_sklearn(rows: list[tuple[str, str]]) -> None:
    y_true = [a for a, _ in rows]
    y_pred = [p for _, p in rows]
    ours = classification_metrics(Counter(rows))
    theirs = sklearn_view(y_true, y_pred)

    assert ours is not None
    assert list(ours.classes) == theirs["labels"]
    assert ours.accuracy == pytest.approx(theirs["accuracy"], abs=TOL)
    for c, (p, r, f, s) in theirs["per_class"].items():
        got = ours.per_class[c]
        assert (got.precision, got.recall, got.f1, got.support) == pytest.approx((p, r, f, s), abs=TOL)
    for average in ("macro", "micro", "weighted"):
        got = getattr(ours, average)
        assert (got.precision, got.recall, got.f1) == pytest.approx(theirs[average], abs=TOL)


def test_class_only_in_labels_or_only_in_predictions() -> None:
    # "c" is never predicted, "z" never true: both count in the macro average with 0s.
    rows = [("a", "a"), ("a", "z"), ("c", "a"), ("b", "b")]
    ours = classification_metrics(Counter(rows))
    theirs = sklearn_view([a for a, _ in rows], [p for _, p in rows])
    assert ours.classes == ("a", "b", "c", "z")
    assert ours.per_class["c"].precision == 0.0 and ours.per_class["c"].recall == 0.0
    assert ours.per_class["z"].recall == 0.0 and ours.per_class["z"].support == 0
    assert (ours.macro.precision, ours.macro.recall, ours.macro.f1) == pytest.approx(theirs["macro"], abs=TOL)


def test_no_labelled_predictions_gives_no_metrics() -> None:
    assert classification_metrics({}) is None
    assert classification_metrics({("a", "a"): 0}) is None
    assert label_coverage(0, 0) is None
    assert label_coverage(0, 10) == 0.0
    assert label_coverage(3, 4) == 0.75


def twice_u_reference(scores: list[float], positive: list[bool]) -> tuple[int, int, int]:
    """Twice the Mann-Whitney U as sql/roc_auc.sql computes it, by brute force over pairs."""
    pos = [s for s, y in zip(scores, positive) if y]
    neg = [s for s, y in zip(scores, positive) if not y]
    twice = sum(2 * (n < p) + (n == p) for p in pos for n in neg)
    return twice, len(pos), len(neg)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5, 0.75, 0.9, 1.0]), st.booleans()),
                min_size=2, max_size=80))
def test_roc_auc_from_mann_whitney_equals_sklearn(rows: list[tuple[float, bool]]) -> None:
    scores = [s for s, _ in rows]
    positive = [y for _, y in rows]
    twice, p, n = twice_u_reference(scores, positive)
    ours = roc_auc(twice, p, n)
    if p == 0 or n == 0:
        assert ours is None
    else:
        assert ours == pytest.approx(skm.roc_auc_score(positive, scores), abs=TOL)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=80))
def test_log_loss_and_brier_equal_sklearn(rows: list[tuple[float, bool]]) -> None:
    p = np.array([s for s, _ in rows])
    y = np.array([int(t) for _, t in rows])
    clipped = np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    log_likelihood = float(np.sum(np.where(y == 1, np.log(clipped), np.log(1 - clipped))))
    squared = float(np.sum((y - p) ** 2))
    assert log_loss(log_likelihood, len(rows)) == pytest.approx(skm.log_loss(y, p, labels=[0, 1]), abs=TOL)
    assert brier_score(squared, len(rows)) == pytest.approx(skm.brier_score_loss(y, p, pos_label=1), abs=TOL)
    assert log_loss(0.0, 0) is None and brier_score(0.0, 0) is None
