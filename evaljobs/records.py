"""Result records: what one evaluation found, independent of where it is sent.

Every sink (Pushgateway, text file, OpenMetrics, results table, CI report, the CLI's
table and JSON) reads these records; none of them queries the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from evaljobs.quality.metrics import ClassificationMetrics, ClassScores
from evaljobs.windows import Window

if TYPE_CHECKING:  # the task modules import this one
    from evaljobs.quality.regression import RegressionMetrics


@dataclass(frozen=True)
class ScoreMetrics:
    """Metrics of the positive-class score over labelled, scored predictions (binary jobs)."""

    scored: int
    roc_auc: float | None
    log_loss: float | None
    brier_score: float | None


@dataclass(frozen=True)
class LatencyHistogram:
    """The window's ``latency_seconds`` of one version as a histogram (see ``evaljobs/latency.py``).

    ``cumulative_counts[i]`` counts latencies ``<= bounds[i]``; ``count`` is the +Inf bucket.
    Predictions whose latency is NULL are in ``missing`` only.
    """

    bounds: tuple[float, ...]
    cumulative_counts: tuple[int, ...]
    count: int
    sum_seconds: float
    missing: int

    @property
    def mean_seconds(self) -> float | None:
        """Total time / measured predictions; None when nothing was measured."""
        return self.sum_seconds / self.count if self.count else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "sum_seconds": self.sum_seconds,
            "mean_seconds": self.mean_seconds,
            "missing": self.missing,
            "buckets": [{"le": le, "count": n} for le, n in zip(self.bounds, self.cumulative_counts)]
            + [{"le": "+Inf", "count": self.count}],
        }


@dataclass(frozen=True)
class Histogram:
    """Observations of one version's window as a Prometheus histogram (regression errors, label delays).

    ``cumulative_counts[i]`` counts observations ``<= bounds[i]``; ``count`` is the +Inf bucket.
    """

    bounds: tuple[float, ...]
    cumulative_counts: tuple[int, ...]
    count: int
    sum: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "sum": self.sum,
            "buckets": [{"le": le, "count": n} for le, n in zip(self.bounds, self.cumulative_counts)]
            + [{"le": "+Inf", "count": self.count}],
        }


@dataclass(frozen=True)
class SegmentSlice:
    """One version's predictions with one value of a segment column (``(other)``: the folded values)."""

    segment: str
    value: str
    window_predictions: int
    labeled_predictions: int
    metrics: ClassificationMetrics | None = None
    regression: RegressionMetrics | None = None

    @property
    def label_coverage(self) -> float | None:
        return self.labeled_predictions / self.window_predictions if self.window_predictions else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "segment": self.segment, "segment_value": self.value, "window_predictions": self.window_predictions,
            "labeled_predictions": self.labeled_predictions, "label_coverage": self.label_coverage,
        }
        if self.metrics is not None:
            out["accuracy"] = self.metrics.accuracy
            out["macro_f1"] = self.metrics.macro.f1
        if self.regression is not None:
            out["regression"] = self.regression.to_dict()
        return out


@dataclass(frozen=True)
class SegmentFold:
    """What the cardinality guard folded into ``(other)`` for one segment (all versions together)."""

    segment: str
    folded_values: int
    folded_predictions: int

    def to_dict(self) -> dict[str, Any]:
        return {"segment": self.segment, "folded_values": self.folded_values,
                "folded_predictions": self.folded_predictions}


@dataclass(frozen=True)
class LabelDelay:
    """How late one version's labels arrive, over the look-back population (evaljobs/quality/label_delay.py).

    ``within`` holds ``(k, due, labelled)``: the predictions at least k x label_delay old, and
    how many of those had a label within k x label_delay.
    """

    configured_seconds: float
    predictions: int
    histogram: Histogram
    within: tuple[tuple[int, int, int], ...]

    def share(self, multiple: int) -> float | None:
        """Share of the predictions at least ``multiple`` x label_delay old labelled within that."""
        for k, due, labelled in self.within:
            if k == multiple:
                return labelled / due if due else None
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"label_delay_seconds": self.configured_seconds, "predictions": self.predictions,
                "delays": self.histogram.to_dict(),
                "labeled_within": {str(k): self.share(k) for k, _, _ in self.within}}


@dataclass(frozen=True)
class Problem:
    """Something that kept part of a job from being evaluated; the rest still ran."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


#: The class that sums the classes beyond a job's ``max_classes`` (like segments' "(other)").
OTHER_CLASS = "(other)"


@dataclass(frozen=True)
class ClassFold:
    """The per-class view of a version with more classes than ``max_classes``: the busiest
    classes in the window keep their own entries, the rest are summed into ``(other)``.

    ``confusion`` has the kept classes and ``(other)`` as actual and predicted classes (the
    ``(other, other)`` cell counts every prediction among folded classes, right or wrong);
    ``per_class`` has each kept class's exact scores and, for ``(other)``, the unweighted mean of
    the folded classes' precision, recall and F1 with their summed support and predicted counts.
    Accuracy and the macro, weighted and micro averages are not folded: they stay over all classes.
    """

    classes: int
    kept: tuple[str, ...]
    folded: int
    confusion: dict[tuple[str, str], int]
    per_class: dict[str, ClassScores]


@dataclass(frozen=True)
class VersionResult:
    """One model version over one window."""

    job: str
    model: str
    model_version: str
    task: str
    window: Window
    window_predictions: int
    labeled_predictions: int
    predictions_total: int
    confusion: dict[tuple[str, str], int]
    metrics: ClassificationMetrics | None
    label_coverage: float | None
    scores: ScoreMetrics | None = None
    positive_label: str | None = None
    drift: DriftReport | None = None
    latency: LatencyHistogram | None = None
    # regression jobs (evaljobs/quality/regression.py): the metrics and the signed-error histogram
    regression: RegressionMetrics | None = None
    error_histogram: Histogram | None = None
    estimate: EstimateReport | None = None
    # a job's segments (evaljobs/quality/segments.py): per segment value, and what was folded
    segments: tuple[SegmentSlice, ...] = ()
    segment_folds: tuple[SegmentFold, ...] = ()
    # how late its labels arrive (evaljobs/quality/label_delay.py)
    label_delay: LabelDelay | None = None
    # more classes than the job's max_classes: the per-class view that is pushed and stored
    class_fold: ClassFold | None = None

    def class_view(self) -> tuple[tuple[str, ...], dict[tuple[str, str], int], Mapping[str, ClassScores]]:
        """``(classes, confusion, per_class)`` as pushed and stored: folded when the version has
        more classes than ``max_classes`` (:class:`ClassFold`), else every class."""
        if self.class_fold is not None:
            fold = self.class_fold
            return (*fold.kept, OTHER_CLASS), fold.confusion, fold.per_class
        metrics = self.metrics
        return (metrics.classes if metrics else ()), self.confusion, (metrics.per_class if metrics else {})

    @property
    def grouping_key(self) -> dict[str, str]:
        """The Pushgateway group (besides ``job``) that holds this version's metrics."""
        return {"model": self.model, "model_version": self.model_version}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, used by ``--output json``."""
        metrics = self.metrics
        out: dict[str, Any] = {
            "job": self.job,
            "model": self.model,
            "model_version": self.model_version,
            "task": self.task,
            "window_start": self.window.start.isoformat(),
            "window_end": self.window.end.isoformat(),
            "labels_as_of": self.window.labels_as_of.isoformat(),
            "window_predictions": self.window_predictions,
            "labeled_predictions": self.labeled_predictions,
            "label_coverage": self.label_coverage,
            "predictions_total": self.predictions_total,
            "confusion": [
                {"actual": a, "predicted": p, "count": n} for (a, p), n in sorted(self.class_view()[1].items())
            ],
            "accuracy": metrics.accuracy if metrics else None,
        }
        if metrics:
            out["per_class"] = {
                c: {"precision": s.precision, "recall": s.recall, "f1": s.f1, "support": s.support}
                for c, s in self.class_view()[2].items()
            }
            out["classes"] = len(metrics.classes)
            if self.class_fold is not None:
                out["folded_classes"] = self.class_fold.folded
            for name, avg in (("macro", metrics.macro), ("micro", metrics.micro), ("weighted", metrics.weighted)):
                out[name] = {"precision": avg.precision, "recall": avg.recall, "f1": avg.f1}
        if self.scores:
            out["scored_predictions"] = self.scores.scored
            out["roc_auc"] = self.scores.roc_auc
            out["log_loss"] = self.scores.log_loss
            out["brier_score"] = self.scores.brier_score
        if self.drift:
            out["drift"] = self.drift.to_dict()
        if self.latency:
            out["latency"] = self.latency.to_dict()
        if self.task == "regression":
            out["regression"] = self.regression.to_dict() if self.regression else None
            out["prediction_error"] = self.error_histogram.to_dict() if self.error_histogram else None
        if self.estimate:
            out["estimate"] = self.estimate.to_dict()
        if self.segments or self.segment_folds:
            out["segments"] = [s.to_dict() for s in self.segments]
            out["segment_folds"] = [f.to_dict() for f in self.segment_folds]
        if self.label_delay:
            out["label_delay"] = self.label_delay.to_dict()
        return out


@dataclass
class TaskResult:
    """What a task (:mod:`evaljobs.quality.tasks`) gives for one window: the versions' records."""

    versions: list[VersionResult]
    orphan_labels: int = 0
    problems: list[Problem] = field(default_factory=list)
    #: Per version, the label delays, when the task's own statement measured them (classification:
    #: sql/window_aggregates.sql); None when the runner must query them (sql/label_delays.sql).
    label_delays: "dict[str, LabelDelay] | None" = None
    label_delay_problems: list[Problem] = field(default_factory=list)
    #: Per version, the latency histograms, when the task's own statement counted them
    #: (classification); None when the runner must query them (sql/latency_histogram.sql).
    latency: "dict[str, LatencyHistogram] | None" = None
    latency_problems: list[Problem] = field(default_factory=list)


@dataclass
class JobResult:
    """One job run: every version found in the window, plus job-level facts."""

    job: str
    model: str
    task: str
    window: Window
    versions: list[VersionResult]
    orphan_labels: int
    started_at: datetime
    duration_seconds: float
    problems: list[Problem] = field(default_factory=list)
    #: Longest gap between two scheduled runs of the job (for the staleness alert).
    schedule_interval_seconds: float | None = None
    #: Label rows with a NULL label that arrived during the last window length (they count as
    #: "not labelled yet"), and prediction ids with rows in the window that predict different
    #: values for one version (sql/ignored_rows.sql).
    null_labels: int = 0
    conflicting_predictions: int = 0
    #: What the user should know about the data although every number was computed (one line
    #: each); unlike ``problems`` they do not make the result partial.
    warnings: list[Problem] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return bool(self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "model": self.model,
            "task": self.task,
            "window_start": self.window.start.isoformat(),
            "window_end": self.window.end.isoformat(),
            "evaluated_at": self.window.evaluated_at.isoformat(),
            "orphan_labels": self.orphan_labels,
            "null_labels": self.null_labels,
            "conflicting_predictions": self.conflicting_predictions,
            "duration_seconds": self.duration_seconds,
            "problems": [str(p) for p in self.problems],
            "warnings": [str(w) for w in self.warnings],
            "versions": [v.to_dict() for v in self.versions],
        }


# ---- drift (issue 3) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class DriftStatistic:
    """One method's result for one value: the score (statistic or distance) and, for tests, a p-value."""

    method: str
    score: float
    p_value: float | None = None


@dataclass(frozen=True)
class DriftBucket:
    """One bin (numeric: ``(lower, upper]``) or category, with both samples' counts."""

    name: str
    reference: int
    current: int


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one value (a feature or a model output) of one version against the reference.

    ``method`` and ``threshold`` are the ones that decide ``detected``; ``statistics`` holds every
    method computed for the kind. With nothing to compare (no values in the window) there are no
    statistics and ``detected`` is None.
    """

    feature: str
    kind: str
    method: str | None
    threshold: float | None
    detected: bool | None
    statistics: tuple[DriftStatistic, ...]
    reference_values: int
    current_values: int
    current_nulls: int | None
    buckets: tuple[DriftBucket, ...] = ()
    #: "exact", or "binned" (numeric values from fine histograms) with ``error_bounds``: the
    #: largest possible difference of each statistic from its exact value (``ks``, ``wasserstein``).
    mode: str = "exact"
    error_bounds: dict[str, float] | None = None

    @property
    def null_ratio(self) -> float | None:
        """NULLs among the version's window rows (None for the label, compared over labelled rows)."""
        if self.current_nulls is None:
            return None
        rows = self.current_values + self.current_nulls
        return self.current_nulls / rows if rows else None

    def statistic(self, method: str | None) -> DriftStatistic | None:
        return next((s for s in self.statistics if s.method == method), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "kind": self.kind,
            "method": self.method,
            "threshold": self.threshold,
            "detected": self.detected,
            "statistics": {s.method: {"score": s.score, "p_value": s.p_value} for s in self.statistics},
            "reference_values": self.reference_values,
            "current_values": self.current_values,
            "current_nulls": self.current_nulls,
            "null_ratio": self.null_ratio,
            "buckets": [{"bucket": b.name, "reference": b.reference, "current": b.current} for b in self.buckets],
            "mode": self.mode,
            "error_bounds": self.error_bounds,
        }


@dataclass(frozen=True)
class ReferenceSummary:
    """What the drift reference was: its kind, a readable description and its row count."""

    kind: str
    description: str
    rows: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "description": self.description, "rows": self.rows}


@dataclass(frozen=True)
class DriftReport:
    """Every drift value of one version against the job's reference."""

    reference: ReferenceSummary
    features: tuple[FeatureDrift, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference.to_dict(), "features": [f.to_dict() for f in self.features]}


# ---- estimated performance (issue 13) ----------------------------------------------------------
@dataclass(frozen=True)
class EstimatedValue:
    """One estimated metric: the value, its standard error and interval (None when undefined)."""

    value: float | None
    standard_error: float | None
    lower: float | None
    upper: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "standard_error": self.standard_error, "lower": self.lower, "upper": self.upper}


@dataclass(frozen=True)
class CalibrationCheck:
    """The estimate for the job's labelled window, made as of when that window was recent (the
    calibration map of then), against the accuracy realised there since: calibration drift."""

    window_start: datetime
    window_end: datetime
    labeled_predictions: int
    estimated_accuracy: float | None
    realised_accuracy: float | None
    standard_error: float | None

    @property
    def gap(self) -> float | None:
        """Realised minus estimated accuracy."""
        if self.estimated_accuracy is None or self.realised_accuracy is None:
            return None
        return self.realised_accuracy - self.estimated_accuracy

    def to_dict(self) -> dict[str, Any]:
        return {"window_start": self.window_start.isoformat(), "window_end": self.window_end.isoformat(),
                "labeled_predictions": self.labeled_predictions, "estimated_accuracy": self.estimated_accuracy,
                "realised_accuracy": self.realised_accuracy, "gap": self.gap, "standard_error": self.standard_error}


@dataclass(frozen=True)
class EstimateReport:
    """CBPE of one version over the recent window ``[start, end)`` (no labels needed).

    ``confusion`` holds the expected ``true_positives``, ``false_positives``, ``false_negatives``
    and ``true_negatives``; ``per_class`` the estimated precision, recall and F1 of the positive class.
    """

    window_start: datetime
    window_end: datetime
    predictions: int
    unscored: int
    calibration: str
    confidence: float
    reference: ReferenceSummary | None
    reference_calibration_error: float | None
    confusion: dict[str, float]
    accuracy: EstimatedValue
    per_class: dict[str, dict[str, EstimatedValue]]
    roc_auc: EstimatedValue
    roc_auc_bound: float | None
    check: CalibrationCheck | None = None
    #: Multiclass: the macro (unweighted) means of ``per_class`` precision, recall and F1, and each
    #: class's expected one-vs-rest TP/FP/FN (``confusion`` then holds the expected correct and
    #: incorrect predictions).
    macro: dict[str, EstimatedValue] = field(default_factory=dict)
    class_confusion: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "predictions": self.predictions,
            "unscored_predictions": self.unscored,
            "calibration": self.calibration,
            "confidence": self.confidence,
            "reference": self.reference.to_dict() if self.reference else None,
            "reference_calibration_error": self.reference_calibration_error,
            "confusion": dict(self.confusion),
            "accuracy": self.accuracy.to_dict(),
            "per_class": {c: {k: v.to_dict() for k, v in m.items()} for c, m in self.per_class.items()},
            "roc_auc": self.roc_auc.to_dict(),
            "roc_auc_bound": self.roc_auc_bound,
            "calibration_check": self.check.to_dict() if self.check else None,
            **({"macro": {k: v.to_dict() for k, v in self.macro.items()}} if self.macro else {}),
            **({"class_confusion": {c: dict(m) for c, m in self.class_confusion.items()}} if self.class_confusion else {}),
        }
