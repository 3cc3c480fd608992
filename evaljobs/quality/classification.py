"""Classification (``binary`` and ``multiclass``): a window's aggregates -> one record per version.

The database returns confusion cells (with score sums), rank sums, and the label-delay and
latency counts in one statement (``sql/window_aggregates.sql``); the maths is in
:mod:`evaljobs.quality.metrics`, :mod:`evaljobs.quality.label_delay` and :mod:`evaljobs.quality.latency`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from evaljobs.config import Job
from evaljobs.db.source import ConfusionCell, JobSource, RankCounts
from evaljobs.errors import SourceError
from evaljobs.quality.label_delay import delay_cell_counts, delays_from_counts
from evaljobs.quality.latency import histograms_from_cells, latency_cell_counts
from evaljobs.quality.metrics import (
    ClassificationMetrics,
    ClassScores,
    brier_score,
    classification_metrics,
    label_coverage,
    log_loss,
    roc_auc,
)
from evaljobs.records import OTHER_CLASS, ClassFold, Problem, ScoreMetrics, TaskResult, VersionResult
from evaljobs.windows import Window


def evaluate_classification(source: JobSource, window: Window) -> TaskResult:
    """Every version of a classification job that has predictions in ``window``."""
    job = source.job
    problems: list[Problem] = []
    scored_task = job.task == "binary" and "score" in source.available_optional
    with_latency = "latency_seconds" in source.available_optional
    cell_counts = [delay_cell_counts(source, window)] + ([latency_cell_counts(source)] if with_latency else [])
    aggregates = source.window_aggregates(window, scored_task, cell_counts)
    require_keys(job, aggregates.cells)
    cells_by_version: dict[str, list[ConfusionCell]] = defaultdict(list)
    for cell in aggregates.cells:
        cells_by_version[cell.model_version].append(cell)
    versions = []
    for version in sorted(cells_by_version):
        cells = cells_by_version[version]
        scores = None
        if scored_task:
            scores, problem = score_metrics(cells, aggregates.ranks.get(version), job.positive_label or "")
            if problem:
                problems.append(Problem(f"job {job.name!r} version {version!r}", problem))
        versions.append(version_result(source, window, version, cells, aggregates.totals.get(version, 0), scores))
    delays, delay_problems = delays_from_counts(job, aggregates.cell_rows, population="population")
    latency, latency_problems = histograms_from_cells(job, aggregates.cell_rows) if with_latency else (None, [])
    return TaskResult(versions, aggregates.orphan_labels, problems, delays, delay_problems, latency, latency_problems)


def class_fold_warnings(job: Job, versions: Iterable[VersionResult]) -> list[Problem]:
    """One warning line per version whose classes were folded (:func:`fold_classes`)."""
    warnings = []
    for version in versions:
        fold = version.class_fold
        if fold is not None:
            warnings.append(Problem(f"job {job.name!r} version {version.model_version!r}", (
                f"{fold.classes} classes, more than max_classes {job.max_classes}: the {fold.folded} with the "
                f"least volume in the window are summed into class \"{OTHER_CLASS}\" in the per-class and "
                f"confusion series and the stored record; accuracy and the macro and weighted averages are "
                f"over all {fold.classes} classes")))
    return warnings


def version_result(
    source: JobSource,
    window: Window,
    version: str,
    cells: Iterable[ConfusionCell],
    predictions_total: int,
    scores: ScoreMetrics | None,
) -> VersionResult:
    """A version's record from its confusion cells (cells with no label are unlabelled predictions)."""
    job = source.job
    cells = list(cells)
    confusion = {(c.label, c.predicted_label): c.predictions for c in cells if c.label is not None}
    window_predictions = sum(c.predictions for c in cells)
    labeled = sum(confusion.values())
    metrics = classification_metrics(confusion)
    volumes: dict[str, int] = defaultdict(int)  # predictions of the class, and labels of it
    for cell in cells:
        volumes[cell.predicted_label] += cell.predictions
        if cell.label is not None:
            volumes[cell.label] += cell.predictions
    return VersionResult(
        job=job.name,
        model=job.model,
        model_version=version,
        task=job.task,
        window=window,
        window_predictions=window_predictions,
        labeled_predictions=labeled,
        # The cumulative count includes this window, so it is never below it.
        predictions_total=max(predictions_total, window_predictions),
        confusion=confusion,
        metrics=metrics,
        label_coverage=label_coverage(labeled, window_predictions),
        scores=scores,
        positive_label=job.positive_label,
        class_fold=fold_classes(metrics, confusion, volumes, job.max_classes) if metrics else None,
    )


def fold_classes(metrics: ClassificationMetrics, confusion: dict[tuple[str, str], int], volumes: dict[str, int],
                 max_classes: int) -> ClassFold | None:
    """The per-class view of a version with more than ``max_classes`` classes (None otherwise):
    the ``max_classes`` classes with the most volume in the window (predictions of the class plus
    labels of it; ties by name) keep their entries, the others become ``(other)`` (see
    :class:`ClassFold`). Works on the exact metrics, so nothing else changes."""
    classes = metrics.classes
    if len(classes) <= max_classes:
        return None
    kept = tuple(sorted(sorted(classes, key=lambda c: (-volumes.get(c, 0), c))[:max_classes]))
    keep = set(kept)
    folded_confusion: dict[tuple[str, str], int] = defaultdict(int)
    for (actual, predicted), count in confusion.items():
        folded_confusion[(actual if actual in keep else OTHER_CLASS,
                          predicted if predicted in keep else OTHER_CLASS)] += count
    rest = [metrics.per_class[c] for c in classes if c not in keep]
    per_class = {c: metrics.per_class[c] for c in kept}
    per_class[OTHER_CLASS] = ClassScores(
        precision=math.fsum(s.precision for s in rest) / len(rest),
        recall=math.fsum(s.recall for s in rest) / len(rest),
        f1=math.fsum(s.f1 for s in rest) / len(rest),
        support=sum(s.support for s in rest),
        predicted=sum(s.predicted for s in rest),
    )
    return ClassFold(classes=len(classes), kept=kept, folded=len(rest), confusion=dict(folded_confusion),
                     per_class=per_class)


def require_keys(job: Job, cells: Iterable[ConfusionCell]) -> None:
    """Refuse a window where a prediction has no version or no predicted class.

    Such rows cannot be grouped (an empty version would also merge into the job-level
    Pushgateway group, whose model_version label is absent).
    """
    for column, values in (("model_version", [c.model_version for c in cells]),
                           ("predicted_label", [c.predicted_label for c in cells])):
        blank = sum(c.predictions for c, v in zip(cells, values) if v is None or v == "")
        if blank:
            raise SourceError(
                f"job {job.name!r}: {blank} prediction(s) in the window have an empty or NULL "
                f"{getattr(job.columns, column)!r} ({column})",
                "fill the column, or filter those rows out with a view and point tables.predictions at it",
            )


def score_metrics(
    cells: Iterable[ConfusionCell], ranks: RankCounts | None, positive_label: str
) -> tuple[ScoreMetrics, str | None]:
    """ROC AUC, log loss and Brier score of one version, and a problem text if scores are invalid."""
    labelled = [c for c in cells if c.label is not None]
    scored = sum(c.scored for c in labelled)
    auc = roc_auc(ranks.twice_u, ranks.positives, ranks.negatives) if ranks else None
    lows = [c.min_score for c in cells if c.min_score is not None]
    highs = [c.max_score for c in cells if c.max_score is not None]
    # PostgreSQL stores NaN and sorts it above every number, so it surfaces in MIN or MAX.
    if lows and not all(math.isfinite(x) for x in (*lows, *highs)):
        problem = ("scores include NaN or infinite values: ROC AUC, log loss and Brier score were not "
                   "computed; fix the score column")
        return ScoreMetrics(scored, None, None, None), problem
    if lows and (min(lows) < 0 or max(highs) > 1):
        problem = (f"scores range from {min(lows):g} to {max(highs):g}, outside [0, 1]: "
                   "log loss and Brier score need probabilities and were not computed")
        return ScoreMetrics(scored, auc, None, None), problem
    # Two or more classes and none of them the positive one is a misconfiguration (a window
    # of negatives only is not): every row would silently count as a negative.
    classes = {c.label for c in labelled} | {c.predicted_label for c in cells}
    if labelled and len(classes) > 1 and positive_label not in classes:
        problem = (f"positive_label {positive_label!r} occurs in no label or prediction "
                   f"(classes: {', '.join(sorted(classes))}): score metrics were not computed; "
                   "set positive_label to the class the score is the probability of")
        return ScoreMetrics(scored, None, None, None), problem
    sum_log = 0.0
    sum_squared = 0.0
    for cell in labelled:
        if not cell.scored:
            continue
        if cell.label == positive_label:
            sum_log += cell.sum_log_score or 0.0
            sum_squared += cell.sum_one_minus_score_squared or 0.0
        else:
            sum_log += cell.sum_log_one_minus_score or 0.0
            sum_squared += cell.sum_score_squared or 0.0
    return ScoreMetrics(
        scored=scored,
        roc_auc=auc,
        log_loss=log_loss(sum_log, scored),
        brier_score=brier_score(sum_squared, scored),
    ), None
