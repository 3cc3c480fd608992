"""Inference latency per model version and window: a histogram counted in the database.

``sql/latency_histogram.sql`` returns, per version, one cumulative count per bucket bound
(one GROUP BY over the window's predictions), the sum and count of ``latency_seconds`` and
the number of NULLs. This module turns those rows into records and the records into the
``model_inference_latency_seconds`` histogram family (rendered in :mod:`evaljobs.exposition`).

The histogram is the *window's*: ``_bucket``, ``_count`` and ``_sum`` describe the
predictions of the evaluated window and are replaced at each run, like every other window
metric. So PromQL uses them without ``rate()``: the average latency is ``_sum / _count`` and
p95 is ``histogram_quantile(0.95, ..._bucket)`` directly. Throughput comes from the
cumulative counter ``model_predictions_total``, not from ``_count``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from evaljobs.config import Job
from evaljobs.db.source import CellCounts, JobSource, optional_float
from evaljobs.records import LatencyHistogram, Problem
from evaljobs.windows import Window


def bucket_columns(bound_count: int, column: str = "latency_seconds") -> str:
    """The ``{bucket_counts}`` slot: one cumulative count of ``column`` per bound, as bound parameters."""
    return ",\n    ".join(
        f"COUNT(CASE WHEN {column} <= :le_{i} THEN 1 END) AS le_{i}" for i in range(bound_count)
    )


def latency_histograms(source: JobSource, window: Window) -> tuple[dict[str, LatencyHistogram], list[Problem]]:
    """Per-version latency histograms of ``window``, and problems for versions with invalid latencies.

    Needs the job's latency column (``"latency_seconds" in source.available_optional``).
    A version whose latencies are negative or not finite gets a problem and no histogram:
    a bucket count built on them would be wrong without saying so.
    """
    job = source.job
    bounds = tuple(job.latency_buckets)
    params = source.window_params(window) | {f"le_{i}": bound for i, bound in enumerate(bounds)}
    rows = source.query("latency_histogram", params, {"bucket_counts": bucket_columns(len(bounds))})
    histograms: dict[str, LatencyHistogram] = {}
    problems: list[Problem] = []
    for row in rows:
        mapping = row._mapping
        histogram, problem = latency_record(
            job.name, row.model_version, bounds, int(row.predictions), int(row.observed),
            optional_float(row.latency_sum), optional_float(row.min_latency), optional_float(row.max_latency),
            tuple(int(mapping[f"le_{i}"]) for i in range(len(bounds))))
        if problem:
            problems.append(problem)
        else:
            histograms[row.model_version] = histogram
    return histograms, problems


def latency_cell_counts(source: JobSource) -> CellCounts:
    """The latency histogram's counts as sql/window_aggregates.sql adds them to each confusion
    cell, over the window's rows of the same join (classification jobs with a latency column):
    the aggregates of sql/fragments/latency_sums.sql, each limited to ``in_window``."""
    bounds = tuple(source.job.latency_buckets)
    latency = "CASE WHEN in_window = 1 THEN latency_seconds END"
    named = [("latency_observed", f"COUNT({latency})"), ("latency_sum", f"SUM({latency})"),
             ("min_latency", f"MIN({latency})"), ("max_latency", f"MAX({latency})")]
    named += [(f"latency_le_{i}", f"COUNT(CASE WHEN in_window = 1 AND latency_seconds <= :latency_le_{i} THEN 1 END)")
              for i in range(len(bounds))]
    return CellCounts({f"latency_le_{i}": bound for i, bound in enumerate(bounds)},
                      tuple(f"{sql} AS {name}" for name, sql in named), tuple(name for name, _ in named))


def histograms_from_cells(job: Job, cells: Iterable[Mapping[str, Any]]) -> tuple[
        dict[str, LatencyHistogram], list[Problem]]:
    """Per version, the latency histogram from the cell rows of sql/window_aggregates.sql
    (:func:`latency_cell_counts`): counts and sums added up, the range widened."""
    bounds = tuple(job.latency_buckets)
    totals: dict[str, list[Any]] = {}
    for cell in cells:
        if not cell["predictions"]:  # a cell of the label-delay look-back alone
            continue
        counts = [int(cell["predictions"]), int(cell["latency_observed"] or 0),
                  *(int(cell[f"latency_le_{i}"] or 0) for i in range(len(bounds)))]
        low, high, total = (optional_float(cell[key]) for key in ("min_latency", "max_latency", "latency_sum"))
        seen = totals.setdefault(cell["model_version"], [[0] * len(counts), None, None, None])
        seen[0] = [a + b for a, b in zip(seen[0], counts)]
        if total is not None:
            seen[1] = total if seen[1] is None else seen[1] + total
        if low is not None:
            seen[2] = low if seen[2] is None else min(seen[2], low)
            seen[3] = high if seen[3] is None else max(seen[3], high)
    histograms: dict[str, LatencyHistogram] = {}
    problems: list[Problem] = []
    for version, (counts, total, low, high) in totals.items():
        histogram, problem = latency_record(job.name, version, bounds, counts[0], counts[1], total, low, high,
                                            tuple(counts[2:]))
        if problem:
            problems.append(problem)
        else:
            histograms[version] = histogram
    return histograms, problems


def latency_record(job: str, version: str, bounds: tuple[float, ...], predictions: int, observed: int,
                   latency_sum: float | None, low: float | None, high: float | None,
                   cumulative_counts: tuple[int, ...]) -> tuple[LatencyHistogram | None, Problem | None]:
    """One version's histogram from its counts (a window's, or its incremental parts' summed),
    or a problem when its latencies are negative or not finite."""
    if low is not None and (low < 0 or not math.isfinite(low) or not math.isfinite(high)):
        return None, Problem(
            f"job {job!r} version {version!r}",
            f"latency_seconds ranges from {low:g} to {high:g}: negative or non-finite latencies make "
            "the histogram meaningless, so model_inference_latency_seconds was not published; "
            "fix the rows or set columns.latency_seconds: null",
        )
    return LatencyHistogram(
        bounds=bounds,
        cumulative_counts=cumulative_counts,
        count=observed,
        sum_seconds=float(latency_sum or 0.0),
        missing=predictions - observed,
    ), None


def histogram_quantile(q: float, bounds: tuple[float, ...], cumulative_counts: tuple[int, ...],
                       count: int) -> float | None:
    """The ``q`` quantile of a cumulative histogram as PromQL's ``histogram_quantile`` computes it.

    Linear interpolation inside the bucket that holds rank ``q * count`` (the first bucket's
    lower edge is 0); a rank in the +Inf bucket gives the largest finite bound. It is an
    estimate with a stated bound: the exact quantile of the observations lies in the same
    bucket, so the error is at most that bucket's width. None when nothing was observed.
    """
    if count <= 0 or not 0 <= q <= 1:
        return None
    rank = q * count
    previous_bound, previous_count = 0.0, 0
    for bound, cumulative in zip(bounds, cumulative_counts):
        if cumulative >= rank and cumulative > previous_count:
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (cumulative - previous_count)
        if cumulative >= rank:  # an empty bucket at the rank: its lower edge, as Prometheus does
            return previous_bound
        previous_bound, previous_count = bound, cumulative
    return bounds[-1] if bounds else None
