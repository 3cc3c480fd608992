"""Incremental windows (issue 9): a window's core aggregates from stored parts.

A job that evaluates a 7-day window every hour would otherwise rescan seven days each hour.
With a results store, the window is cut into **parts** of ``incremental.part`` (default: the
schedule's interval), aligned to the window's end, so that the next window shares all parts but
one. Each part's mergeable aggregates -- the confusion cells' prediction counts (the cells with
no label give the coverage) and the latency histogram's counts, sums and ranges -- are stored
in the results store (``evaljobs_summaries``, kind ``window_part``) with

- a **fingerprint**: the part's prediction count and latest ``predicted_at`` (one cheap GROUP BY
  over the ``(model_name, predicted_at)`` index, ``sql/incremental_part_counts.sql``), and
- its **as-of**: the ``labels_as_of`` its labels were read at.

A stored part is reused when its fingerprint is unchanged. Labels that arrived between its
as-of and this run's ``labels_as_of`` (late labels) are applied as a change: the cells of the
predictions they join, as of both times, read from those predictions alone
(``sql/incremental_label_changes.sql``), -1 and +1. Every other part (new, or its predictions
changed) is recomputed (``sql/incremental_part_cells.sql``, ``sql/incremental_part_latency.sql``,
one statement per run of consecutive stale parts) and stored. The parts are then summed
(:func:`merge`), which gives the same counts as the full query. Always recomputed: the
cumulative totals before the window and the orphan labels (``sql/incremental_totals.sql``),
and everything beyond the core metrics and latency (label delays, drift, segments, estimates).

Not incremental (the whole window is evaluated as before): regression jobs, and binary jobs
with a score column -- their exact ROC AUC needs the ranks of the whole window, and their log
loss sums would only agree with a full recomputation to rounding. The merge maths here is pure;
the SQL is in ``sql/``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from evaljobs.db.source import ConfusionCell, JobSource, optional_float
from evaljobs.errors import EvaljobsError
from evaljobs.quality.classification import require_keys, version_result
from evaljobs.quality.latency import bucket_columns, latency_record
from evaljobs.records import LatencyHistogram, Problem, TaskResult
from evaljobs.windows import Window, schedule_interval

if TYPE_CHECKING:
    from evaljobs.ops.store import ResultsStore

log = logging.getLogger("evaljobs.incremental")

#: The results-store kind of a stored part.
KIND = "window_part"
#: At most this many statements recompute stale parts; beyond, the closest runs are joined.
MAX_RECOMPUTE_QUERIES = 8
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# ---- planning (pure) ------------------------------------------------------------------------
@dataclass(frozen=True)
class Part:
    """Part ``number`` of the grid: ``[start, end)``, clipped to the window."""

    number: int
    start: datetime
    end: datetime


@dataclass(frozen=True)
class PartPlan:
    """A window's parts, and the grid's offset and length in seconds (the SQL's parameters)."""

    parts: tuple[Part, ...]
    offset_seconds: int
    part_seconds: int


def plan_parts(window: Window, part: timedelta) -> PartPlan | None:
    """Cut ``window`` into parts of ``part``, aligned to its end (the first may be shorter).

    None when the grid would not fall on whole seconds (an end with a fraction of a second), so
    that the database's part numbers are exact.
    """
    if part <= timedelta(0) or part.microseconds or part.days * 86400 + part.seconds <= 0:
        return None
    offset = (window.end - _EPOCH) % part
    if offset.microseconds:
        return None
    first = (window.start - _EPOCH - offset) // part
    last = (window.end - _EPOCH - offset) // part - 1
    parts = tuple(
        Part(n, max(window.start, _EPOCH + offset + n * part), min(window.end, _EPOCH + offset + (n + 1) * part))
        for n in range(first, last + 1))
    return PartPlan(parts, int(offset.total_seconds()), int(part.total_seconds()))


def query_ranges(numbers: Iterable[int], most: int = MAX_RECOMPUTE_QUERIES) -> list[tuple[int, int]]:
    """Runs ``(first, last)`` of consecutive part numbers covering ``numbers``, at most ``most``
    of them (the two runs with the smallest gap are joined until few enough)."""
    runs: list[list[int]] = []
    for n in sorted(set(numbers)):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    while len(runs) > max(1, most):
        gap, index = min((runs[i + 1][0] - runs[i][1], i) for i in range(len(runs) - 1))
        runs[index:index + 2] = [[runs[index][0], runs[index + 1][1]]]
    return [(a, b) for a, b in runs]


# ---- the mergeable aggregates (pure) ------------------------------------------------------------
@dataclass
class LatencyCounts:
    """One version's latency counts over one part: exactly what the histogram is summed from."""

    predictions: int
    observed: int
    sums: list[float]  # the parts' SUMs, added once at the end (math.fsum)
    low: float | None
    high: float | None
    cumulative: list[int]


@dataclass
class PartAggregates:
    """A part's (or a merged window's) cells ``(version, label, predicted) -> predictions`` and
    latency counts per version."""

    cells: dict[tuple[str | None, str | None, str | None], int] = field(default_factory=dict)
    latency: dict[str | None, LatencyCounts] = field(default_factory=dict)

    def to_payload(self) -> str:
        return json.dumps({
            "cells": [[v, a, p, n] for (v, a, p), n in self.cells.items()],
            "latency": [[v, c.predictions, c.observed, c.sums, c.low, c.high, c.cumulative]
                        for v, c in self.latency.items()],
        }, separators=(",", ":"))

    @classmethod
    def from_payload(cls, text: str) -> "PartAggregates":
        data = json.loads(text)
        return cls(
            cells={(v, a, p): int(n) for v, a, p, n in data["cells"]},
            latency={v: LatencyCounts(int(n), int(o), [float(x) for x in s], low, high, [int(x) for x in c])
                     for v, n, o, s, low, high, c in data["latency"]},
        )


def _extreme(values: Iterable[float | None], pick) -> float | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    # A NaN anywhere is what the window's MIN/MAX surfaces (the histogram is then refused).
    nans = [v for v in present if math.isnan(v)]
    return nans[0] if nans else pick(present)


def merge(parts: Iterable[PartAggregates]) -> PartAggregates:
    """The window's aggregates from its parts': counts added, ranges widened, sums kept to add once."""
    out = PartAggregates()
    latency: dict[str | None, list[LatencyCounts]] = {}
    for part in parts:
        for key, n in part.cells.items():
            out.cells[key] = out.cells.get(key, 0) + n
        for version, counts in part.latency.items():
            latency.setdefault(version, []).append(counts)
    for version, pieces in latency.items():
        out.latency[version] = LatencyCounts(
            predictions=sum(c.predictions for c in pieces),
            observed=sum(c.observed for c in pieces),
            sums=[s for c in pieces for s in c.sums],
            low=_extreme((c.low for c in pieces), min),
            high=_extreme((c.high for c in pieces), max),
            cumulative=[sum(column) for column in zip(*(c.cumulative for c in pieces))],
        )
    return out


def apply_change(part: PartAggregates, change: dict[tuple, int]) -> PartAggregates:
    """``part`` with late labels' cell changes added (cells that reach 0 are gone, as in a full query)."""
    cells = dict(part.cells)
    for key, n in change.items():
        cells[key] = cells.get(key, 0) + n
        if cells[key] == 0:
            del cells[key]
        elif cells[key] < 0:
            raise RuntimeError(f"a late label change took cell {key!r} below zero")  # a bug, not bad input
    return PartAggregates(cells, part.latency)


def cells_of(aggregates: PartAggregates) -> list[ConfusionCell]:
    """The merged cells as the full query's rows (no score sums: incremental jobs have no score metrics)."""
    return [ConfusionCell(model_version=v, label=a, predicted_label=p, predictions=n, scored=0,
                          sum_log_score=None, sum_log_one_minus_score=None, sum_score_squared=None,
                          sum_one_minus_score_squared=None, min_score=None, max_score=None)
            for (v, a, p), n in aggregates.cells.items()]


def latency_sum(counts: LatencyCounts) -> float | None:
    """The window's latency sum: the parts' sums added with :func:`math.fsum` (the correctly
    rounded sum of the stored part sums; a database's own SUM over the window may differ from
    it in the last bits, as it does between two plans of the same query)."""
    return math.fsum(counts.sums) if counts.sums else None


# ---- running it ----------------------------------------------------------------------------------
@dataclass
class IncrementalResult:
    """What :func:`evaluate_incremental` gives: the task's records, latency (None without a
    latency column) and what it did (for ``--debug`` and the tests)."""

    quality: TaskResult
    latency: dict[str, LatencyHistogram] | None
    latency_problems: list[Problem]
    reused: int  # stored parts used (some updated for late labels)
    updated: int  # of those, parts whose cells late labels changed
    recomputed: int  # parts read again from the predictions
    queries: int


def applies(source: JobSource) -> bool:
    """Whether the job's window can be evaluated from parts (see the module docstring)."""
    job = source.job
    if not job.incremental.enabled or job.task not in ("binary", "multiclass"):
        return False
    return not (job.task == "binary" and "score" in source.available_optional)


def part_length(source: JobSource, window: Window) -> timedelta:
    """``incremental.part``, else the schedule's interval."""
    job = source.job
    return job.incremental.part or schedule_interval(job.schedule, window.evaluated_at)


def definition(source: JobSource, plan: PartPlan) -> str:
    """A short hash of everything a part's aggregates depend on besides its rows: a changed
    mapping, task, bucket list or grid gives new keys, so old parts are never reused for it."""
    job = source.job
    text = json.dumps({
        "model": job.model, "task": job.task, "positive_label": job.positive_label,
        "tables": job.tables.model_dump(mode="json"), "columns": job.columns.model_dump(mode="json"),
        "latency_buckets": list(job.latency_buckets), "labels_unique": source.labels_unique,
        "text_capable": sorted(source.text_capable), "available": sorted(source.available_optional),
        "grid": [plan.offset_seconds, plan.part_seconds], "layout": 1,
    }, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def part_key(digest: str, part: Part) -> str:
    return f"{digest}/{part.start.isoformat()}/{part.end.isoformat()}"


def fingerprint(predictions: int, last_predicted_at: Any) -> str:
    return f"{predictions}/{last_predicted_at}"


def evaluate_incremental(source: JobSource, window: Window, store: "ResultsStore",
                         now: datetime | None = None) -> IncrementalResult | None:
    """The window's classification records (and latency histograms) from stored and recomputed
    parts; None when the window cannot be cut into whole-second parts (then evaluate it fully)."""
    job = source.job
    plan = plan_parts(window, part_length(source, window))
    if plan is None:
        return None
    with_latency = "latency_seconds" in source.available_optional
    base = source.window_params(window) | {"part_offset": plan.offset_seconds, "part_seconds": plan.part_seconds}
    numbers = {p.number for p in plan.parts}
    counts = {}
    for row in source.query("incremental_part_counts", base):
        _check_number(row.part, numbers)
        counts[int(row.part)] = fingerprint(int(row.predictions), row.last_predicted_at)
    queries = 1

    digest = definition(source, plan)
    as_of = window.labels_as_of.isoformat()
    try:
        stored = store.summaries(job.name, KIND)
    except EvaljobsError as exc:
        # The parts are a cache: without them (a role not granted the table, say) the window is
        # evaluated fully, as without a results store.
        log.warning("job %s: cannot read its stored window parts (%s); evaluating the whole window", job.name, exc)
        return None
    by_number = {p.number: p for p in plan.parts}
    aggregates: dict[int, PartAggregates] = {}
    candidates: dict[int, str] = {}  # part number -> the stored payload, pending the label check
    stale: set[int] = set()
    as_ofs: dict[str, set[int]] = {}
    for part in plan.parts:
        if part.number not in counts:
            aggregates[part.number] = PartAggregates()  # no predictions: nothing to store or read
            continue
        summary = stored.get(part_key(digest, part))
        if summary is None or summary.fingerprint != counts[part.number]:
            stale.add(part.number)
            continue
        candidates[part.number] = summary.payload
        if summary.as_of != as_of:
            as_ofs.setdefault(summary.as_of, set()).add(part.number)
    # Labels that arrived between a part's as-of and this run's labels_as_of (either way: a
    # backfill reads an earlier one) move some of its predictions to another cell: add that
    # change, read from those predictions alone, instead of rescanning the part.
    for number, payload in candidates.items():
        if number not in stale:
            aggregates[number] = PartAggregates.from_payload(payload)
    updated: set[int] = set()
    for old, members in as_ofs.items():
        stored_as_of = datetime.fromisoformat(old)
        low, high = sorted((stored_as_of, window.labels_as_of))
        rows = source.query("incremental_label_changes", base | {
            "changed_from": source.bind_time(low), "changed_to": source.bind_time(high),
            "stored_as_of": source.bind_time(stored_as_of)})
        queries += 1
        changes: dict[int, dict[tuple, int]] = {}
        for row in rows:
            _check_number(row.part, numbers)
            if int(row.part) in members and int(row.change):
                changes.setdefault(int(row.part), {})[(row.model_version, row.label, row.predicted_label)] = \
                    int(row.change)
        for number, change in changes.items():
            aggregates[number] = apply_change(aggregates[number], change)
            updated.add(number)
    touched = [part_key(digest, by_number[n]) for members in as_ofs.values() for n in members if n not in updated]

    written = {n: (part_key(digest, by_number[n]), counts[n], aggregates[n]) for n in sorted(updated)}
    recomputed = set()
    for first, last in query_ranges(stale):
        found, statements = _compute_parts(source, base, by_number[first].start, by_number[last].end,
                                           with_latency, numbers)
        queries += statements
        for number in range(first, last + 1):
            aggregates[number] = found.get(number, PartAggregates())
            recomputed.add(number)
            if number in counts:
                written[number] = (part_key(digest, by_number[number]), counts[number], aggregates[number])

    totals: dict[str, int] = {}
    orphans = 0
    params = base | {"arrived_from": source.bind_time(window.labels_as_of - window.length)}
    for row in source.query("incremental_totals", params):
        if row.row_kind == "total":
            totals[row.model_version] = int(row.predictions)
        else:
            orphans = int(row.predictions)
    queries += 1

    _save(store, job.name, list(written.values()), touched, as_of, window, now)
    merged = merge(aggregates[p.number] for p in plan.parts)
    quality, latency, problems = _records(source, window, merged, totals, orphans, with_latency)
    log.debug("job %s: %d part(s) reused (%d updated for late labels), %d recomputed, %d statement(s)",
              job.name, len(candidates), len(updated), len(recomputed), queries)
    return IncrementalResult(quality, latency, problems, reused=len(candidates), updated=len(updated),
                             recomputed=len(recomputed), queries=queries)


def _check_number(number: Any, numbers: set[int]) -> None:
    if number is None or int(number) not in numbers:
        # The database numbered a row of the window outside the window's parts: a bug, not bad input.
        raise RuntimeError(f"incremental part {number!r} is not one of the window's parts")


def _compute_parts(source: JobSource, base: dict[str, Any], start: datetime, end: datetime, with_latency: bool,
                   numbers: set[int]) -> tuple[dict[int, PartAggregates], int]:
    """The aggregates of the parts in ``[start, end)``, from one statement (two with latency)."""
    params = base | {"window_start": source.bind_time(start), "window_end": source.bind_time(end)}
    out: dict[int, PartAggregates] = {}
    for row in source.query("incremental_part_cells", params):
        _check_number(row.part, numbers)
        cells = out.setdefault(int(row.part), PartAggregates()).cells
        cells[(row.model_version, row.label, row.predicted_label)] = int(row.predictions)
    if not with_latency:
        return out, 1
    bounds = tuple(source.job.latency_buckets)
    params |= {f"le_{i}": bound for i, bound in enumerate(bounds)}
    for row in source.query("incremental_part_latency", params, {"bucket_counts": bucket_columns(len(bounds))}):
        _check_number(row.part, numbers)
        mapping = row._mapping
        total = optional_float(row.latency_sum)
        out.setdefault(int(row.part), PartAggregates()).latency[row.model_version] = LatencyCounts(
            int(row.predictions), int(row.observed), [] if total is None else [total],
            optional_float(row.min_latency), optional_float(row.max_latency),
            [int(mapping[f"le_{i}"]) for i in range(len(bounds))])
    return out, 2


def _save(store: "ResultsStore", job: str, written: Sequence[tuple[str, str, PartAggregates]],
          touched: Sequence[str], as_of: str, window: Window, now: datetime | None) -> None:
    from evaljobs.ops.store import Summary

    moment = now or datetime.now(timezone.utc)
    try:
        store.save_summaries(job, KIND, [Summary(key, fp, as_of, agg.to_payload()) for key, fp, agg in written],
                             touched, as_of, moment, stale_before=moment - max(2 * window.length, timedelta(days=1)))
    except EvaljobsError as exc:
        # The parts are a cache: this run's numbers are complete without them; the next run
        # recomputes what is missing.
        log.warning("job %s: could not store the window's parts (%s); the next run recomputes them", job, exc)


def _records(source: JobSource, window: Window, merged: PartAggregates, totals: dict[str, int], orphans: int,
             with_latency: bool) -> tuple[TaskResult, dict[str, LatencyHistogram] | None, list[Problem]]:
    job = source.job
    cells = [c for c in cells_of(merged) if c.predictions]
    require_keys(job, cells)
    by_version: dict[str, list[ConfusionCell]] = {}
    for cell in cells:
        by_version.setdefault(cell.model_version, []).append(cell)
    versions = []
    for version in sorted(by_version):
        window_predictions = sum(c.predictions for c in by_version[version])
        versions.append(version_result(source, window, version, by_version[version],
                                       totals.get(version, 0) + window_predictions, None))
    if not with_latency:
        return TaskResult(versions, orphans, []), None, []
    histograms: dict[str, LatencyHistogram] = {}
    problems: list[Problem] = []
    bounds = tuple(job.latency_buckets)
    for version in sorted(merged.latency, key=lambda v: (v is None, v or "")):
        counts = merged.latency[version]
        if not counts.predictions:
            continue
        histogram, problem = latency_record(job.name, version, bounds, counts.predictions, counts.observed,
                                            latency_sum(counts), counts.low, counts.high, tuple(counts.cumulative))
        if problem:
            problems.append(problem)
        else:
            histograms[version] = histogram
    return TaskResult(versions, orphans, []), histograms, problems
