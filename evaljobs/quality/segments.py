"""Segments: a job's quality metrics per value of low-cardinality columns (``segments: [country]``).

One statement per window, whatever the number of segments and values
(``sql/segment_aggregates.sql``): the window's rows with their latest label are read once and
grouped by GROUPING SETS, one set per segment, on engines that have them (PostgreSQL, DuckDB,
Spark); SQLite, which has none, pairs each row with each segment and groups once
(``sql/sqlite/segment_aggregates.sql``). What is grouped is the task's: confusion cells for
classification, the regression sums for regression, so that every segment's numbers come from
the same maths as the version's.

**Cardinality guard.** Per segment, only the ``max_segment_values`` values with the most
predictions in the window (all versions together, ties broken by value) keep their own series;
the others are summed into ``segment_value="(other)"``, and how many values (and predictions)
were folded is reported. A NULL value is ``(null)``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from evaljobs.db import sqlfiles
from evaljobs.db.source import JobSource
from evaljobs.quality import regression
from evaljobs.quality.metrics import LOG_LOSS_EPS, classification_metrics
from evaljobs.records import SegmentFold, SegmentSlice
from evaljobs.windows import Window

OTHER = "(other)"
NULL_VALUE = "(null)"


def segment_slots(source: JobSource, cell_keys: list[str]) -> dict[str, str]:
    """The generated slots of ``sql/segment_aggregates.sql`` (and its SQLite override).

    Only identifiers evaljobs quoted and numbers go in: never user text.
    """
    spec = source.spec
    count = len(source.job.segments)
    names = [f"segment_{i}" for i in range(count)]
    columns = [spec.class_text_sql(f"p.{source.quote(column)}") for column in source.job.segments]
    keys = ", ".join(cell_keys)
    return {
        "segment_columns": "".join(f"COALESCE({column}, '{NULL_VALUE}') AS {name},\n            "
                                   for column, name in zip(columns, names)),
        "segment_list": ", ".join(names),
        "grouping_index": "CASE " + " ".join(f"WHEN GROUPING({name}) = 0 THEN {i}" for i, name in enumerate(names)) + " END",
        "value_sets": ", ".join(f"({name})" for name in names),
        "fold_joins": "\n    ".join(
            f"LEFT JOIN value_ranks k{i} ON k{i}.segment_index = {i} AND k{i}.segment_value = t.{name} "
            f"AND k{i}.value_rank <= :max_segment_values" for i, name in enumerate(names)),
        "folded_columns": ", ".join(f"CASE WHEN k{i}.segment_value IS NULL THEN '{OTHER}' ELSE t.{name} END AS {name}"
                                    for i, name in enumerate(names)),
        "cell_sets": ", ".join(f"(model_version, {name}{', ' + keys if keys else ''})" for name in names),
        "cell_keys": f"{keys}, " if keys else "",
        "cell_group_keys": f", {keys}" if keys else "",
        "segment_indexes": " UNION ALL ".join(f"SELECT {i} AS segment_index" for i in range(count)),
        "segment_cases": " ".join(f"WHEN {i} THEN t.{name}" for i, name in enumerate(names)),
    }


def evaluate_segments(source: JobSource, window: Window
                      ) -> tuple[dict[str, tuple[SegmentSlice, ...]], tuple[SegmentFold, ...]]:
    """Per version, its metrics per segment value; and per segment, what the guard folded."""
    job = source.job
    if not job.segments:
        return {}, ()
    if job.task == "regression":
        values, cell_keys, measures = regression.value_expressions(source), [], "fragments/regression_sums"
    else:
        ids = source.identifiers()
        values = {"prediction_expr": ids["predicted_label_text"], "label_expr": ids["label_text"]}
        cell_keys, measures = ["label", "prediction"], "fragments/class_cells"
    slots = values | segment_slots(source, cell_keys)
    slots["measures"] = sqlfiles.render(measures, source.identifiers(), slots, source.dialect)
    params = source.window_params(window) | {"max_segment_values": job.max_segment_values, "eps": LOG_LOSS_EPS}
    rows = source.query("segment_aggregates", params, slots)

    folds: dict[int, SegmentFold] = {}
    groups: dict[tuple[str, int, str], list[Any]] = defaultdict(list)
    for row in rows:
        index = int(row.segment_index)
        folds[index] = SegmentFold(job.segments[index], int(row.folded_values), int(row.folded_predictions))
        groups[(row.model_version, index, row.segment_value)].append(row)

    slices: dict[str, list[SegmentSlice]] = defaultdict(list)
    # Segments in configured order, values by name with (other) last, as a reader expects.
    for (version, index, value), cells in sorted(groups.items(), key=lambda item: (
            item[0][0], item[0][1], item[0][2] == OTHER, item[0][2])):
        segment = job.segments[index]
        if job.task == "regression":
            [row] = cells
            sums = regression.sums_of(row)
            # NaN or infinite values: the version's record reports them; no numbers here either.
            finite = row.min_error is None or math.isfinite(row.min_error) and math.isfinite(row.max_error)
            slices[version].append(SegmentSlice(segment, value, int(row.predictions), sums.labeled,
                                                regression=regression.regression_metrics(sums) if finite else None))
        else:
            confusion = {(c.label, c.prediction): int(c.predictions) for c in cells if c.label is not None}
            slices[version].append(SegmentSlice(
                segment, value, sum(int(c.predictions) for c in cells), sum(confusion.values()),
                metrics=classification_metrics(confusion)))
    ordered_folds = tuple(folds[i] for i in sorted(folds))
    return {version: tuple(found) for version, found in slices.items()}, ordered_folds
