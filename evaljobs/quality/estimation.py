"""Estimated performance of a binary job's recent window (its ``estimate:`` section), before labels
(a multiclass job's is :mod:`evaljobs.quality.multiclass_estimation`).

Called by :func:`evaljobs.ops.runner.evaluate_job`. An evaluation at ``T`` of a job whose
labelled window is ``[T - label_delay - window, T - label_delay)`` also estimates the recent
window ``[T - estimate.window, T)``:

1. ``sql/estimate_reference.sql`` counts the labelled reference per version and score bin; the
   calibration map is fitted to those counts (:mod:`evaljobs.quality.estimate`);
2. ``sql/estimate_window.sql`` counts the recent window per version, bin and predicted class in
   one pass (with the labelled window's labelled predictions alongside);
3. the labelled window is estimated again with the map of the evaluation that last saw it as
   recent (at ``T - label_delay``), and compared with the accuracy realised there: the gap is the
   calibration-drift signal.

Only counts cross the database boundary.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from evaljobs.config import Estimate as EstimateSettings
from evaljobs.config import Job
from evaljobs.db import sqlfiles
from evaljobs.db.dialects import class_text
from evaljobs.db.source import JobSource
from evaljobs.errors import SourceError
from evaljobs.quality import estimate as cbpe
from evaljobs.records import (
    CalibrationCheck,
    EstimatedValue,
    EstimateReport,
    Problem,
    ReferenceSummary,
)
from evaljobs.windows import Window, plan_window, span


@dataclass(frozen=True)
class CalibrationRows:
    """Where the labelled reference is for an evaluation at some time, and a description."""

    kind: str
    description: str
    start: datetime | None = None
    end: datetime | None = None
    version: str | None = None
    table: str | None = None
    labels_as_of: datetime | None = None


def calibration_rows(job: Job, at: datetime) -> CalibrationRows | None:
    """The calibration reference of an evaluation at ``at`` (None with ``calibrated: true`` and no reference).

    ``previous_window`` and ``version`` mean the job's labelled window of that evaluation (of all
    versions, or of the named one); ``baseline`` a fixed range; ``table`` every row of a table.
    """
    settings: EstimateSettings = job.estimate  # type: ignore[assignment]
    reference = settings.reference
    if reference is None:
        return None
    of_version = f" of version {reference.version}" if reference.version else ""
    if reference.kind == "table":
        return CalibrationRows("table", f"table {reference.table}", table=reference.table, labels_as_of=at)
    if reference.kind == "baseline":
        return CalibrationRows("baseline", f"labelled predictions {span(reference.start, reference.end)}{of_version}",
                               reference.start, reference.end, reference.version, labels_as_of=at)
    labelled = plan_window(at, job.window, job.label_delay)
    return CalibrationRows(reference.kind, f"labelled window {span(labelled.start, labelled.end)}{of_version}",
                           labelled.start, labelled.end, reference.version, labels_as_of=at)


@dataclass
class ReferenceCounts:
    """Per-bin reference counts of one calibration group (a version, or every version)."""

    rows: list[int]
    positives: list[int]
    sum_scores: list[float]

    @property
    def total(self) -> int:
        return sum(self.rows)


@dataclass
class WindowCounts:
    """Per-version cells of the recent window and of the labelled window's labelled predictions."""

    recent: dict[str, list[cbpe.Cell]]
    unscored: dict[str, int]
    labelled: dict[str, list[tuple[cbpe.Cell, int]]]  # (cell, positives)
    bad_scores: dict[str, tuple[float, float]]


class EstimateQueries:
    """The two CBPE statements of one job."""

    def __init__(self, source: JobSource):
        self.source = source
        self.job = source.job
        self.settings: EstimateSettings = source.job.estimate  # type: ignore[assignment]

    def reference(self, rows: CalibrationRows) -> dict[str | None, ReferenceCounts]:
        """Reference counts by version (key None: a table, or a reference of one named version)."""
        ids = dict(self.source.identifiers())
        params: dict[str, Any] = {"model": self.job.model, "bins": self.settings.bins,
                                  "positive_label": self.job.positive_label,
                                  "labels_as_of": self.source.bind_time(rows.labels_as_of)}  # type: ignore[arg-type]
        if rows.kind == "table":
            columns = self.job.columns
            ids["reference_table"] = self.source.quote(rows.table or "")
            ids["reference_score"] = f"CAST(r.{self.source.quote(columns.score or 'score')} AS {self.source.spec.float_type})"
            ids["reference_label"] = class_text(self.source.dialect, f"r.{self.source.quote(columns.label)}")
            fragment = "estimate_reference_table"
        else:
            params |= {"reference_start": self.source.bind_time(rows.start),  # type: ignore[arg-type]
                       "reference_end": self.source.bind_time(rows.end),  # type: ignore[arg-type]
                       "reference_version": rows.version}
            fragment = "estimate_reference_predictions"
        # A multiclass estimate's per-class columns (evaljobs/quality/multiclass_estimation.py) are not read.
        reference_rows = sqlfiles.render(fragment, ids, {"class_score_list": "", "reference_class_scores": ""},
                                         dialect=self.source.dialect)
        out: dict[str | None, ReferenceCounts] = {}
        bins = self.settings.bins
        for row in self.source.query("estimate_reference", params, {"reference_rows": reference_rows}):
            low, high = _float(row.min_score), _float(row.max_score)
            if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high > 1:
                raise SourceError(
                    f"job {self.job.name!r}: reference scores range from {low:g} to {high:g}, not probabilities in [0, 1]",
                    "estimate needs the positive class's probability in the score column; clean the reference")
            key = None if rows.version is not None else row.model_version
            counts = out.setdefault(key, ReferenceCounts([0] * bins, [0] * bins, [0.0] * bins))
            counts.rows[int(row.bin)] += int(row.predictions)
            counts.positives[int(row.bin)] += int(row.positives)
            counts.sum_scores[int(row.bin)] += float(row.sum_score)
        return out

    def window(self, labelled: Window, recent_start: datetime, recent_end: datetime) -> WindowCounts:
        """The cells of the recent window and of the labelled window's labelled predictions."""
        params = self.source.window_params(labelled) | {
            "recent_start": self.source.bind_time(recent_start),
            "recent_end": self.source.bind_time(recent_end),
            "bins": self.settings.bins,
            "positive_label": self.job.positive_label,
        }
        out = WindowCounts(defaultdict(list), defaultdict(int), defaultdict(list), {})
        for row in self.source.query("estimate_window", params):
            version = row.model_version
            if row.bin is None:
                if row.part == "recent":
                    out.unscored[version] += int(row.predictions)
                continue
            low, high = _float(row.min_score), _float(row.max_score)
            if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high > 1:
                previous = out.bad_scores.get(version, (low, high))
                out.bad_scores[version] = (min(previous[0], low), max(previous[1], high))
                continue
            cell = cbpe.Cell(int(row.bin), bool(row.predicted_positive), int(row.predictions),
                             float(row.sum_score), float(row.sum_score_variance))
            if row.part == "recent":
                out.recent[version].append(cell)
            else:
                out.labelled[version].append((cell, int(row.positives)))
        return out


@dataclass
class References:
    """The calibration references of an evaluation: now's (for the recent window) and then's (the
    evaluation that last saw the labelled window as recent, for the calibration check)."""

    now_rows: CalibrationRows | None
    now: dict
    then: dict

    def key(self, version: str) -> str | None:
        """The reference group of a version: None for a table or a named version, else its own."""
        rows = self.now_rows
        return None if (rows is None or rows.kind == "table" or rows.version is not None) else version


def load_references(queries: Any, job: Job, window: Window) -> References:
    """Both references through ``queries.reference`` (binary or multiclass counts); may raise SourceError."""
    now_rows, then_rows = calibration_rows(job, window.evaluated_at), calibration_rows(job, window.end)
    return References(now_rows, queries.reference(now_rows) if now_rows else {},
                      queries.reference(then_rows) if then_rows else {})


def out_of_range(where: str, bad_scores: dict[str, tuple[float, float]], what: str, fix: str) -> list[Problem]:
    """One problem per version whose scores are not probabilities in [0, 1]."""
    return [Problem(f"{where} version {version!r}", (
                f"{what} range from {low:g} to {high:g}, not probabilities in [0, 1]: no estimate; {fix}"))
            for version, (low, high) in sorted(bad_scores.items())]


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _fit(settings: EstimateSettings, counts: ReferenceCounts | None) -> cbpe.CalibrationMap | None:
    if counts is None or not counts.total:
        return None
    fit = cbpe.isotonic if settings.calibration == "isotonic" else cbpe.histogram_binning
    return fit(counts.rows, counts.positives)


def _value(estimated: cbpe.Estimated) -> EstimatedValue:
    return EstimatedValue(estimated.value, estimated.standard_error, estimated.lower, estimated.upper)


def evaluate_estimate(source: JobSource, window: Window,
                      versions: Sequence[str]) -> tuple[dict[str, EstimateReport], list[Problem]]:
    """CBPE of every version with scored predictions in the recent window (``versions`` are those
    of the labelled window; versions seen only in the recent window are estimated too)."""
    job = source.job
    settings = job.estimate
    if settings is None:
        return {}, []
    if job.task == "multiclass":
        from evaljobs.quality.multiclass_estimation import evaluate_multiclass_estimate

        return evaluate_multiclass_estimate(source, window, versions)
    where = f"job {job.name!r} estimate"
    if "score" not in source.available_optional:
        return {}, [Problem(where, f"column {job.columns.score!r} not found in {job.tables.predictions!r}: "
                                   "the estimate needs the positive class's probability; set columns.score")]
    queries = EstimateQueries(source)
    at = window.evaluated_at
    recent_start, recent_end = at - (settings.window or job.window), at
    try:
        references = load_references(queries, job, window)
    except SourceError as exc:
        return {}, [Problem(where, str(exc))]
    now_rows, then_reference = references.now_rows, references.then
    counts = queries.window(window, recent_start, recent_end)
    problems = out_of_range(where, counts.bad_scores, "scores", "fix the score column")

    reports: dict[str, EstimateReport] = {}
    for version in sorted(set(counts.recent) | set(counts.labelled) | set(versions)):
        if version in counts.bad_scores:
            continue
        key = references.key(version)
        reference = references.now.get(key)
        calibration = None if settings.calibrated else _fit(settings, reference)
        summary = None
        if now_rows is not None:
            summary = ReferenceSummary(now_rows.kind, now_rows.description, reference.total if reference else 0)
        if not settings.calibrated and calibration is None:
            if counts.recent.get(version):
                problems.append(Problem(f"{where} version {version!r}", (
                    f"the calibration reference ({now_rows.description if now_rows else '-'}) has no labelled, scored "
                    "predictions of this version: no estimate; set estimate.reference.version to calibrate with "
                    "another version, or choose another reference")))
            continue
        cells = counts.recent.get(version, [])
        result = cbpe.estimate(cells, calibration, settings.confidence)
        ece = (cbpe.expected_calibration_error(reference.rows, reference.positives, reference.sum_scores)
               if reference else None)
        check = _calibration_check(settings, window, counts.labelled.get(version, []),
                                   then_reference.get(key), settings.calibrated)
        if not cells and check is None:
            continue
        positive = job.positive_label or ""
        reports[version] = EstimateReport(
            window_start=recent_start,
            window_end=recent_end,
            predictions=result.predictions,
            unscored=counts.unscored.get(version, 0),
            calibration="none (declared calibrated)" if settings.calibrated else settings.calibration,
            confidence=settings.confidence,
            reference=summary,
            reference_calibration_error=ece,
            confusion={"true_positives": result.true_positives, "false_positives": result.false_positives,
                       "false_negatives": result.false_negatives, "true_negatives": result.true_negatives},
            accuracy=_value(result.accuracy),
            per_class={positive: {name: _value(v) for name, v in result.positive.items()}} if result.positive else {},
            roc_auc=_value(result.roc_auc),
            roc_auc_bound=result.roc_auc_bound,
            check=check,
        )
    return reports, problems


def _calibration_check(settings: EstimateSettings, window: Window, labelled: list[tuple[cbpe.Cell, int]],
                       reference: ReferenceCounts | None, calibrated: bool) -> CalibrationCheck | None:
    """The labelled window estimated with the map of then, against its realised accuracy."""
    if not labelled:
        return None
    calibration = None if calibrated else _fit(settings, reference)
    if calibration is None and not calibrated:
        return None
    estimated = cbpe.estimate([cell for cell, _ in labelled], calibration, settings.confidence)
    realised = cbpe.realised_accuracy([(c.predicted_positive, c.predictions, p) for c, p in labelled])
    return CalibrationCheck(window.start, window.end, estimated.predictions, estimated.accuracy.value,
                            realised, estimated.accuracy.standard_error)
