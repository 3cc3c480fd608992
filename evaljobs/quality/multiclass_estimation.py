"""Estimated performance of a multiclass job's recent window, one-vs-rest (its ``estimate:``
section with ``columns.class_scores``), before labels.

The same three steps as a binary job (:mod:`evaljobs.quality.estimation`), with every class
a binary problem of its own: "is it class ``c``", scored by ``c``'s probability column.

1. ``sql/estimate_reference_multiclass.sql`` counts the labelled reference per version, class
   and bin of that class's probability; each class gets its own calibration map;
2. ``sql/estimate_window_multiclass.sql`` counts the recent window per version, predicted
   class, class and bin in one pass (with the labelled window's labelled predictions);
3. :func:`evaljobs.quality.estimate.multiclass_estimate` combines the classes.

NannyML's multiclass CBPE also divides each prediction's calibrated probabilities by their sum;
that needs every class's bin of one prediction at once, which per-class bin counts do not keep.
Here a class's calibrated probability is used as it is (one-vs-rest); README, "Estimated
performance", states the difference, and tests/quality/test_estimate_multiclass.py bounds it.

The per-class expressions are generated from quoted column names; class labels are bound values.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from evaljobs.db import sqlfiles
from evaljobs.db.dialects import class_text
from evaljobs.db.source import JobSource
from evaljobs.errors import SourceError
from evaljobs.quality import estimate as cbpe
from evaljobs.quality.estimation import (
    CalibrationRows,
    ReferenceCounts,
    _fit,
    _float,
    _value,
    load_references,
    out_of_range,
)
from evaljobs.records import CalibrationCheck, EstimateReport, Problem, ReferenceSummary
from evaljobs.windows import Window


def class_slots(source: JobSource, alias: str = "p") -> dict[str, str]:
    """The generated slots of the multiclass estimate SQL (see sql/estimate_window_multiclass.sql)."""
    scores = source.job.columns.class_scores or {}
    spec = source.spec
    k_range = range(len(scores))
    columns = "".join(f"CAST({alias}.{source.quote(column)} AS {spec.float_type}) AS score_{k},\n            "
                      for k, column in enumerate(scores.values()))
    return {
        "class_score_columns": columns,
        "segment_columns": columns,  # the task_rows fragment's generated columns
        "class_score_names": ", ".join(f"score_{k}" for k in k_range),
        "class_score_list": "".join(f", score_{k}" for k in k_range),
        "class_rows": "\n    UNION ALL ".join(f"SELECT {k} AS k, CAST(:class_{k} AS {spec.text_type}) AS class_label"
                                             for k in k_range),
        "class_score_pick": "CASE c.k " + " ".join(f"WHEN {k} THEN w.score_{k}" for k in k_range) + " END",
        "any_score_null": " OR ".join(f"w.score_{k} IS NULL" for k in k_range),
    }


def class_params(source: JobSource) -> dict[str, Any]:
    return {f"class_{k}": label for k, label in enumerate((source.job.columns.class_scores or {}))}


@dataclass
class MulticlassWindowCounts:
    """Per version and class, the one-vs-rest cells of the recent window and of the labelled window."""

    recent: dict[str, dict[str, list[cbpe.Cell]]]
    unscored: dict[str, int]
    labelled: dict[str, dict[str, list[tuple[cbpe.Cell, int]]]]
    bad_scores: dict[str, tuple[float, float]]


class MulticlassQueries:
    """The two multiclass CBPE statements of one job."""

    def __init__(self, source: JobSource):
        self.source = source
        self.job = source.job
        self.settings = source.job.estimate
        self.classes = list(source.job.columns.class_scores or {})

    def reference(self, rows: CalibrationRows) -> dict[str | None, dict[str, ReferenceCounts]]:
        """Reference counts by version (key None: a table, or a reference of one named version) and class."""
        source, bins = self.source, self.settings.bins  # type: ignore[union-attr]
        ids = dict(source.identifiers())
        slots = class_slots(source)
        params: dict[str, Any] = {"model": self.job.model, "bins": bins,
                                  "labels_as_of": source.bind_time(rows.labels_as_of)}  # type: ignore[arg-type]
        params |= class_params(source)
        if rows.kind == "table":
            ids["reference_table"] = source.quote(rows.table or "")
            ids["reference_score"] = f"CAST(NULL AS {source.spec.float_type})"
            ids["reference_label"] = class_text(source.dialect, f"r.{source.quote(self.job.columns.label)}")
            slots["reference_class_scores"] = "".join(
                f", CAST(r.{source.quote(column)} AS {source.spec.float_type}) AS score_{k}"
                for k, column in enumerate((self.job.columns.class_scores or {}).values()))
            fragment = "estimate_reference_table"
        else:
            params |= {"reference_start": source.bind_time(rows.start),  # type: ignore[arg-type]
                       "reference_end": source.bind_time(rows.end),  # type: ignore[arg-type]
                       "reference_version": rows.version}
            fragment = "estimate_reference_predictions"
        slots["reference_rows"] = sqlfiles.render(fragment, ids, slots, dialect=source.dialect)
        out: dict[str | None, dict[str, ReferenceCounts]] = {}
        for row in source.query("estimate_reference_multiclass", params, slots):
            cls = self.classes[int(row.k)]
            low, high = _float(row.min_score), _float(row.max_score)
            if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high > 1:
                raise SourceError(
                    f"job {self.job.name!r}: reference probabilities of class {cls!r} range from {low:g} to {high:g}, "
                    "not probabilities in [0, 1]",
                    f"estimate needs columns.class_scores.{cls} to hold the class's probability; clean the reference")
            key = None if rows.version is not None else row.model_version
            counts = out.setdefault(key, {}).setdefault(cls, ReferenceCounts([0] * bins, [0] * bins, [0.0] * bins))
            counts.rows[int(row.bin)] += int(row.predictions)
            counts.positives[int(row.bin)] += int(row.positives)
            counts.sum_scores[int(row.bin)] += float(row.sum_score)
        return out

    def window(self, labelled: Window, recent_start: datetime, recent_end: datetime) -> MulticlassWindowCounts:
        """One-vs-rest cells of the recent window and of the labelled window's labelled predictions."""
        source = self.source
        params = source.window_params(labelled) | class_params(source) | {
            "recent_start": source.bind_time(recent_start),
            "recent_end": source.bind_time(recent_end),
            "bins": self.settings.bins,  # type: ignore[union-attr]
        }
        slots = class_slots(source) | {"prediction_expr": source.identifiers()["predicted_label_text"],
                                       "label_expr": source.identifiers()["label_text"]}
        out = MulticlassWindowCounts(defaultdict(lambda: defaultdict(list)), defaultdict(int),
                                     defaultdict(lambda: defaultdict(list)), {})
        for row in source.query("estimate_window_multiclass", params, slots):
            version, cls = row.model_version, self.classes[int(row.k)]
            if row.bin is None:
                if row.part == "recent" and int(row.k) == 0:
                    out.unscored[version] += int(row.predictions)
                continue
            low, high = _float(row.min_score), _float(row.max_score)
            if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high > 1:
                previous = out.bad_scores.get(version, (low, high))
                out.bad_scores[version] = (min(previous[0], low), max(previous[1], high))
                continue
            cell = cbpe.Cell(int(row.bin), row.predicted_label == cls, int(row.predictions),
                             float(row.sum_score), float(row.sum_score_variance))
            if row.part == "recent":
                out.recent[version][cls].append(cell)
            else:
                out.labelled[version][cls].append((cell, int(row.positives)))
        return out


def _maps(settings: Any, counts: dict[str, ReferenceCounts] | None,
          classes: Sequence[str]) -> dict[str, cbpe.CalibrationMap | None] | None:
    """One map per class; None when some class has no reference rows (no estimate)."""
    if counts is None:
        return None
    maps = {c: _fit(settings, counts.get(c)) for c in classes}
    return None if any(m is None for m in maps.values()) else maps


def _ece(counts: dict[str, ReferenceCounts] | None) -> float | None:
    """The classes' one-vs-rest expected calibration errors, averaged (each over all reference rows)."""
    if not counts:
        return None
    values = [cbpe.expected_calibration_error(c.rows, c.positives, c.sum_scores) for c in counts.values()]
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def evaluate_multiclass_estimate(source: JobSource, window: Window,
                                 versions: Sequence[str]) -> tuple[dict[str, EstimateReport], list[Problem]]:
    """CBPE of every version with scored predictions in the recent window, one-vs-rest per class."""
    job = source.job
    settings = job.estimate
    assert settings is not None
    where = f"job {job.name!r} estimate"
    queries = MulticlassQueries(source)
    classes = queries.classes
    at = window.evaluated_at
    recent_start, recent_end = at - (settings.window or job.window), at
    try:
        references = load_references(queries, job, window)
    except SourceError as exc:
        return {}, [Problem(where, str(exc))]
    now_rows, then_reference = references.now_rows, references.then
    counts = queries.window(window, recent_start, recent_end)
    problems = out_of_range(where, counts.bad_scores, "class probabilities", "fix the columns in columns.class_scores")
    identity: dict[str, cbpe.CalibrationMap | None] = {c: None for c in classes}
    reports: dict[str, EstimateReport] = {}
    for version in sorted(set(counts.recent) | set(counts.labelled) | set(versions)):
        if version in counts.bad_scores:
            continue
        key = references.key(version)
        reference = references.now.get(key)
        maps = identity if settings.calibrated else _maps(settings, reference, classes)
        summary = None
        if now_rows is not None:
            total = next(iter(reference.values())).total if reference else 0
            summary = ReferenceSummary(now_rows.kind, now_rows.description, total)
        if maps is None:
            if counts.recent.get(version):
                missing = [c for c in classes if not (reference and reference.get(c) and reference[c].total)]
                problems.append(Problem(f"{where} version {version!r}", (
                    f"the calibration reference ({now_rows.description if now_rows else '-'}) has no labelled, scored "
                    f"predictions of this version{' (none of class ' + ', '.join(map(repr, missing)) + ')' if reference else ''}"
                    ": no estimate; set estimate.reference.version to calibrate with another version, or choose "
                    "another reference")))
            continue
        cells = counts.recent.get(version, {})
        result = cbpe.multiclass_estimate({c: cells.get(c, []) for c in classes}, maps, settings.confidence)
        then_maps = identity if settings.calibrated else _maps(settings, then_reference.get(key), classes)
        check = _calibration_check(settings, window, counts.labelled.get(version, {}), then_maps, classes)
        if not result.predictions and check is None:
            continue
        reports[version] = EstimateReport(
            window_start=recent_start,
            window_end=recent_end,
            predictions=result.predictions,
            unscored=counts.unscored.get(version, 0),
            calibration="none (declared calibrated)" if settings.calibrated else f"{settings.calibration}, one-vs-rest",
            confidence=settings.confidence,
            reference=summary,
            reference_calibration_error=_ece(reference),
            confusion={"correct_predictions": sum(e.true_positives for e in result.per_class.values()),
                       "incorrect_predictions": sum(e.false_positives for e in result.per_class.values())},
            accuracy=_value(result.accuracy),
            per_class={c: {name: _value(v) for name, v in e.positive.items()} for c, e in result.per_class.items()
                       if e.positive},
            roc_auc=_value(result.roc_auc),
            roc_auc_bound=result.roc_auc_bound,
            check=check,
            macro={name: _value(v) for name, v in result.macro.items()},
            class_confusion={c: {"true_positives": e.true_positives, "false_positives": e.false_positives,
                                 "false_negatives": e.false_negatives} for c, e in result.per_class.items()
                             if e.predictions},
        )
    return reports, problems


def _calibration_check(settings: Any, window: Window, labelled: dict[str, list[tuple[cbpe.Cell, int]]],
                       maps: dict[str, cbpe.CalibrationMap | None] | None,
                       classes: Sequence[str]) -> CalibrationCheck | None:
    """The labelled window estimated with the maps of then, against its realised accuracy."""
    if not labelled or maps is None:
        return None
    estimated = cbpe.multiclass_estimate({c: [cell for cell, _ in labelled.get(c, [])] for c in classes}, maps,
                                         settings.confidence)
    realised = cbpe.realised_multiclass_accuracy({c: labelled.get(c, []) for c in classes})
    return CalibrationCheck(window.start, window.end, estimated.predictions, estimated.accuracy.value,
                            realised, estimated.accuracy.standard_error)
