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
(:func:`merge`), which gives the same counts as the full query.

The same parts, over the label-delay look-back, hold the label delays (kind ``delay_part``:
sql/label_delays.sql's counts per part; a prediction whose first label arrived since is added,
``sql/incremental_delay_changes.sql``), when the look-back and the "due" times of the multiples
of ``label_delay`` fall on the grid. Orphan labels are counted per part of label *arrival* time
(kind ``orphan_part``, fingerprinted by the labels' count and latest ``labeled_at``), again for
the arrival parts holding labels of predictions this run read again. The predictions before the
window (``model_predictions_total``) are a stored count before an earlier window's start plus
those made since (kind ``history``). Categorical drift of features and the predicted label is
counted per part and value too (kind ``drift_part``; :class:`DriftParts`), and a fixed
``baseline`` or ``table`` reference is summarised once (kind ``reference``: categorical counts,
or a numeric value's fine bins) until its fingerprint changes. Always recomputed: segments,
numeric drift of the window, label drift and estimates.

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
from evaljobs.quality.label_delay import DELAY_BUCKETS, MULTIPLES, delay_record, lookback
from evaljobs.quality.latency import bucket_columns, latency_record
from evaljobs.records import LabelDelay, LatencyHistogram, Problem, TaskResult
from evaljobs.windows import Window, schedule_interval

if TYPE_CHECKING:
    from evaljobs.ops.store import ResultsStore, Summary

log = logging.getLogger("evaljobs.incremental")

#: The results-store kinds: a window part, a label-delay (look-back) part, a label-arrival part's
#: orphan count, and the count of a job's predictions before a window's start.
KIND = "window_part"
DELAY_KIND = "delay_part"
ORPHAN_KIND = "orphan_part"
HISTORY_KIND = "history"
DRIFT_KIND = "drift_part"
REFERENCE_KIND = "reference"
#: The parts' fingerprints of the previous run (one summary per definition), checked in one
#: aggregate instead of counting every part of the look-back again (:func:`_part_fingerprints`).
FINGERPRINTS_KIND = "part_counts"
#: Where a count of "all predictions before the window" starts when nothing is stored.
_HISTORY_START = datetime(1900, 1, 1, tzinfo=timezone.utc)
#: A window of more parts than this is evaluated whole (a part too short for it: say so).
MAX_PARTS = 2500
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
    return parts_between(window.start, window.end, PartPlan((), int(offset.total_seconds()),
                                                            int(part.total_seconds())))


def parts_between(start: datetime, end: datetime, grid: PartPlan) -> PartPlan:
    """The parts of ``grid`` that meet ``[start, end)``, clipped to it."""
    part, offset = timedelta(seconds=grid.part_seconds), timedelta(seconds=grid.offset_seconds)
    first = (start - _EPOCH - offset) // part
    last = -((-(end - _EPOCH - offset)) // part) - 1  # the part that holds the instant before end
    parts = tuple(
        Part(n, max(start, _EPOCH + offset + n * part), min(end, _EPOCH + offset + (n + 1) * part))
        for n in range(first, last + 1))
    return PartPlan(parts, grid.offset_seconds, grid.part_seconds)


def grid_floor(moment: datetime, grid: PartPlan) -> datetime:
    """The start of the grid part that holds ``moment``."""
    part, offset = timedelta(seconds=grid.part_seconds), timedelta(seconds=grid.offset_seconds)
    return _EPOCH + offset + ((moment - _EPOCH - offset) // part) * part


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


@dataclass
class DelayCounts:
    """One version's label-delay counts over one part of the look-back."""

    predictions: int
    labeled: int
    sums: list[float]
    low: float | None
    cumulative: list[int]
    within: list[int]  # per multiple k (MULTIPLES): predictions labelled within k x label_delay

    def to_json(self) -> list:
        return [self.predictions, self.labeled, self.sums, self.low, self.cumulative, self.within]

    @classmethod
    def from_json(cls, data: list) -> "DelayCounts":
        n, labeled, sums, low, cumulative, within = data
        return cls(int(n), int(labeled), [float(x) for x in sums], low, [int(x) for x in cumulative],
                   [int(x) for x in within])


def delays_to_payload(part: dict[str | None, DelayCounts]) -> str:
    return json.dumps([[v, c.to_json()] for v, c in part.items()], separators=(",", ":"))


def delays_from_payload(text: str) -> dict[str | None, DelayCounts]:
    return {v: DelayCounts.from_json(c) for v, c in json.loads(text)}


def add_first_labels(part: dict[str | None, DelayCounts],
                     change: dict[str | None, DelayCounts]) -> dict[str | None, DelayCounts]:
    """``part`` with predictions whose first label arrived since it was stored (``change``: their
    count as ``labeled``, their delays); they were counted as unlabelled, so ``predictions`` stays."""
    out = dict(part)
    for version, new in change.items():
        old = out.get(version)
        if old is None:
            # A version with no predictions in the part cannot gain first labels there.
            raise RuntimeError(f"first labels for version {version!r} in a part without its predictions")
        out[version] = DelayCounts(old.predictions, old.labeled + new.labeled, old.sums + new.sums,
                                   _extreme((old.low, new.low), min),
                                   [a + b for a, b in zip(old.cumulative, new.cumulative)],
                                   [a + b for a, b in zip(old.within, new.within)])
    return out


def merge_delays(parts: Sequence[tuple[Part, dict[str | None, DelayCounts]]], dues: Sequence[datetime]
                 ) -> dict[str | None, tuple[DelayCounts, list[int], list[int]]]:
    """Per version: the look-back's counts, and per due time (one per multiple k) the predictions
    of the parts that end by it and how many of those were labelled within k x label_delay."""
    out: dict[str | None, tuple[DelayCounts, list[int], list[int]]] = {}
    for part, versions in parts:
        for version, c in versions.items():
            if version not in out:
                out[version] = (DelayCounts(0, 0, [], None, [0] * len(c.cumulative), [0] * len(c.within)),
                                [0] * len(dues), [0] * len(dues))
            total, due, within = out[version]
            total.predictions += c.predictions
            total.labeled += c.labeled
            total.sums += c.sums
            total.low = _extreme((total.low, c.low), min)
            total.cumulative = [a + b for a, b in zip(total.cumulative, c.cumulative)]
            for i, moment in enumerate(dues):
                if part.end <= moment:
                    due[i] += c.predictions
                    within[i] += c.within[i]
    return out


def on_grid(moment: datetime, plan: PartPlan) -> bool:
    """Whether ``moment`` is a boundary of the plan's grid."""
    return (moment - _EPOCH - timedelta(seconds=plan.offset_seconds)) % timedelta(seconds=plan.part_seconds) \
        == timedelta(0)


# ---- running it ----------------------------------------------------------------------------------
@dataclass
class IncrementalResult:
    """What :func:`evaluate_incremental` gives: the task's records, latency (None without a
    latency column), label delays (None when they are evaluated fully) and what it did (for
    ``--debug`` and the tests)."""

    quality: TaskResult
    latency: dict[str, LatencyHistogram] | None
    latency_problems: list[Problem]
    delays: dict[str, LabelDelay] | None
    delay_problems: list[Problem]
    reused: int  # stored window parts used (some updated for late labels)
    updated: int  # of those, parts whose cells late labels changed
    recomputed: int  # window parts read again from the predictions
    queries: int
    delay_reused: int = 0
    delay_recomputed: int = 0
    orphan_recomputed: int = 0
    #: Parts whose fingerprints the previous run counted and one aggregate found unchanged (not counted again).
    verified_parts: int = 0
    #: Categorical drift from parts (evaljobs.drift.evaluate's categorical_parts), None without drift.
    drift: "DriftParts | None" = None


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
    mapping, task, bucket list, label_delay or grid gives new keys, so old parts are never reused for it."""
    job = source.job
    text = json.dumps({
        "model": job.model, "task": job.task, "positive_label": job.positive_label,
        "tables": job.tables.model_dump(mode="json"), "columns": job.columns.model_dump(mode="json"),
        "latency_buckets": list(job.latency_buckets), "labels_unique": source.labels_unique,
        "text_capable": sorted(source.text_capable), "available": sorted(source.available_optional),
        "label_delay": job.label_delay.total_seconds(), "delay_buckets": list(DELAY_BUCKETS),
        "grid": [plan.offset_seconds, plan.part_seconds], "layout": 2,
    }, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def part_key(digest: str, part: Part) -> str:
    return f"{digest}/{part.start.isoformat()}/{part.end.isoformat()}"


def fingerprint(count: int, last: Any) -> str:
    return f"{count}/{last}"


@dataclass
class _Reuse:
    """Which stored parts of one kind still hold (their payloads), which must be read again,
    and which stored parts were read at another labels_as_of (as-of text -> part numbers)."""

    payloads: dict[int, str] = field(default_factory=dict)
    stale: set[int] = field(default_factory=set)
    as_ofs: dict[str, set[int]] = field(default_factory=dict)


def _reuse(stored: dict[str, "Summary"], parts: Sequence[Part], counts: dict[int, str], digest: str,
           as_of: str) -> _Reuse:
    out = _Reuse()
    for part in parts:
        if part.number not in counts:
            continue  # nothing in it: nothing to read or store
        summary = stored.get(part_key(digest, part))
        if summary is None or summary.fingerprint != counts[part.number]:
            out.stale.add(part.number)
            continue
        out.payloads[part.number] = summary.payload
        if summary.as_of != as_of:
            out.as_ofs.setdefault(summary.as_of, set()).add(part.number)
    return out


def evaluate_incremental(source: JobSource, window: Window, store: "ResultsStore",
                         now: datetime | None = None) -> IncrementalResult | None:
    """The window's classification records, latency histograms and label delays from stored and
    recomputed parts; None when the window cannot be cut into whole-second parts or the stored
    parts cannot be read (then evaluate it fully)."""
    job = source.job
    length = part_length(source, window)
    plan = plan_parts(window, length)
    if plan is None:
        return None
    if len(plan.parts) > MAX_PARTS:
        log.info("job %s: a %s window in parts of %s would be %d parts (at most %d): evaluating it whole; "
                 "set incremental.part longer", job.name, window.length, length, len(plan.parts), MAX_PARTS)
        return None
    try:
        everything = store.all_summaries(job.name)  # one statement for every kind
        stored = {kind: everything.get(kind, {}) for kind in
                  (KIND, DELAY_KIND, ORPHAN_KIND, HISTORY_KIND, DRIFT_KIND, REFERENCE_KIND, FINGERPRINTS_KIND)}
    except EvaljobsError as exc:
        # The parts are a cache: without them (a role not granted the table, say) the window is
        # evaluated fully, as without a results store.
        log.warning("job %s: cannot read its stored window parts (%s); evaluating the whole window", job.name, exc)
        return None
    moment = now or datetime.now(timezone.utc)
    results_store, store = store, _Batched()  # this run's parts are written in one transaction at the end
    with_latency = "latency_seconds" in source.available_optional
    digest = definition(source, plan)
    as_of = window.labels_as_of.isoformat()
    base = source.window_params(window) | {"part_offset": plan.offset_seconds, "part_seconds": plan.part_seconds}

    # Label delays come from parts too when the look-back and every "due" time fall on the grid.
    look_start = window.end - lookback(window, job.label_delay)
    dues = [window.labels_as_of - k * job.label_delay for k in MULTIPLES]
    delay_plan = plan_parts(Window(look_start, window.end, window.evaluated_at, window.labels_as_of), length)
    with_delays = delay_plan is not None and len(delay_plan.parts) <= 4 * MAX_PARTS and all(
        on_grid(due, plan) or due >= window.end or due <= look_start for due in dues)
    span_start = look_start if with_delays else window.start
    if job.drift is not None and job.drift.reference.kind == "previous_window":
        span_start = min(span_start, window.start - window.length)  # categorical drift's reference parts
    # Counted over whole grid parts, so that a part's fingerprint always covers the same span
    # (a clipped first part's is its whole grid part's: a change beside it recomputes it too).
    span_start = grid_floor(span_start, plan)
    base |= {"lookback_start": source.bind_time(look_start)}
    numbers = {p.number for p in parts_between(span_start, window.end, plan).parts}
    counts, raw, queries, verified = _part_fingerprints(source, base, plan, span_start, window.end, numbers,
                                                   stored[FINGERPRINTS_KIND].get(digest))
    written_counts = [(digest, "", _counts_payload(numbers, raw))]

    # ---- the window's cells and latency ----
    by_number = {p.number: p for p in plan.parts}
    window_numbers = set(by_number)
    reuse = _reuse(stored[KIND], plan.parts, counts, digest, as_of)
    aggregates = {n: PartAggregates() for n in window_numbers}
    for number, payload in reuse.payloads.items():
        aggregates[number] = PartAggregates.from_payload(payload)
    # Labels that arrived between a part's as-of and this run's labels_as_of (either way: a
    # backfill reads an earlier one) move some of its predictions to another cell: add that
    # change, read from those predictions alone, instead of rescanning the part.
    updated: set[int] = set()
    for old, members in reuse.as_ofs.items():
        stored_as_of = datetime.fromisoformat(old)
        low, high = sorted((stored_as_of, window.labels_as_of))
        rows = source.query("incremental_label_changes", base | {
            "changed_from": source.bind_time(low), "changed_to": source.bind_time(high),
            "stored_as_of": source.bind_time(stored_as_of)})
        queries += 1
        changes: dict[int, dict[tuple, int]] = {}
        for row in rows:
            _check_number(row.part, window_numbers)
            if int(row.part) in members and int(row.change):
                changes.setdefault(int(row.part), {})[(row.model_version, row.label, row.predicted_label)] = \
                    int(row.change)
        for number, change in changes.items():
            aggregates[number] = apply_change(aggregates[number], change)
            updated.add(number)
    touched = {old: [part_key(digest, by_number[n]) for n in members if n not in updated]
               for old, members in reuse.as_ofs.items()}
    written = {n: (part_key(digest, by_number[n]), counts[n], aggregates[n]) for n in sorted(updated)}
    recomputed: set[int] = set()
    reread: list[tuple[datetime, datetime]] = []
    for first, last in query_ranges(reuse.stale):
        start, end = by_number[first].start, by_number[last].end
        found, statements = _compute_parts(source, base, start, end, with_latency, window_numbers)
        queries += statements
        reread.append((start, end))
        for number in range(first, last + 1):
            aggregates[number] = found.get(number, PartAggregates())
            recomputed.add(number)
            if number in counts:
                written[number] = (part_key(digest, by_number[number]), counts[number], aggregates[number])
    _save(store, job.name, KIND, [(k, fp, a.to_payload()) for k, fp, a in written.values()], touched, as_of,
          window, moment, stored=stored[KIND])

    # ---- label delays over the look-back ----
    delays, delay_problems, delay_stats = None, [], (0, 0)
    if with_delays:
        delays, delay_problems, delay_stats, statements = _delays(source, window, delay_plan, counts, digest,
                                                                  stored[DELAY_KIND], base, dues, store, moment)
        queries += statements

    # ---- what the window's rows do not hold: earlier predictions, orphan labels ----
    totals, statements = _totals_before(source, window, digest, stored[HISTORY_KIND], store, moment)
    queries += statements
    orphans, orphan_recomputed, statements, label_counts = _orphans(
        source, window, plan, digest, stored[ORPHAN_KIND], base, reread, store, moment,
        stored[FINGERPRINTS_KIND].get(f"{digest}/labels"))
    queries += statements
    if label_counts is not None:
        written_counts.append((f"{digest}/labels", "", label_counts))
    _save(store, job.name, FINGERPRINTS_KIND, written_counts, [], "", window, moment,
          keep=lookback(window, job.label_delay))
    try:
        results_store.save_summary_batches(job.name, store.batches)
    except EvaljobsError as exc:
        # The parts are a cache: this run's numbers are complete without them.
        log.warning("job %s: could not store the window's parts (%s); the next run recomputes them", job.name, exc)

    merged = merge(aggregates[n] for n in sorted(window_numbers))
    quality, latency, problems = _records(source, window, merged, totals, orphans, with_latency)
    reused = len(reuse.payloads)
    log.debug("job %s: window parts: %d reused (%d updated for late labels), %d recomputed; label-delay parts: "
              "%d reused, %d recomputed; %d orphan part(s) recomputed; %d part(s) found unchanged at once; %d statement(s)",
              job.name, reused, len(updated), len(recomputed), *delay_stats, orphan_recomputed, verified, queries)
    drift = (DriftParts(source, window, plan, counts, digest, stored[DRIFT_KIND], results_store, moment, base,
                        stored[REFERENCE_KIND]) if job.drift is not None else None)
    return IncrementalResult(quality, latency, problems, delays, delay_problems, reused=reused,
                             updated=len(updated), recomputed=len(recomputed), queries=queries,
                             delay_reused=delay_stats[0], delay_recomputed=delay_stats[1],
                             orphan_recomputed=orphan_recomputed, drift=drift, verified_parts=verified)


@dataclass
class DriftParts:
    """Categorical drift of feature columns and the predicted label from stored parts: per part,
    version and value, how many predictions (``sql/incremental_drift_counts.sql``; they depend on
    the predictions alone, so a part holds while its fingerprint does). The window's parts give
    the versions' counts; the reference is the same parts of one version (``kind: version``) or
    the previous window's parts (``kind: previous_window``: the previous run's current window),
    and a ``baseline`` or ``table`` reference is summarised once (kind ``reference``, keyed by its
    definition and the value) and reused while its fingerprint holds. A numeric feature's
    ``baseline`` or ``table`` reference is stored the same way as its fine bins
    (:meth:`numeric_reference`); label drift and the rest of numeric drift are queried as before."""

    source: JobSource
    window: Window
    grid: PartPlan
    counts: dict[int, str]
    digest: str
    stored: dict[str, "Summary"]
    store: "ResultsStore"
    moment: datetime
    base: dict[str, Any]
    reference_summaries: dict[str, "Summary"] = field(default_factory=dict)
    reused: int = 0
    recomputed: int = 0

    def categorical(self, value: Any, reference: Any, max_categories: int, versions: int) -> Any:
        """:class:`~evaljobs.drift.queries.CategoricalSummaries` of ``value``, or None to query it."""
        from evaljobs.drift.queries import CategoricalSummaries

        job, window = self.source.job, self.window
        kind = job.drift.reference.kind if job.drift else None
        if value.is_label or value.kind != "categorical":
            return None
        if kind == "version":
            reference_parts = parts_between(window.start, window.end, self.grid).parts
        elif kind == "previous_window" and on_grid(window.start, self.grid):
            # (Off the grid, the previous window's last part and the window's first would share a number.)
            reference_parts = parts_between(window.start - window.length, window.start, self.grid).parts
        elif kind in ("baseline", "table"):
            reference_parts = ()
        else:
            return None
        window_parts = parts_between(window.start, window.end, self.grid).parts
        wanted = {p.number: p for p in (*reference_parts, *window_parts)}
        found = self._part_counts(value, wanted, max_categories, versions)
        if found is None:
            return None
        current: dict[str, dict[str | None, int]] = {}
        for part in window_parts:
            for (version, item), n in found[(part.start, part.end)].items():
                current.setdefault(version, {})
                current[version][item] = current[version].get(item, 0) + n
        referenced: dict[str | None, int] = {}
        if kind in ("baseline", "table"):
            stored_reference = self._reference(value, reference, max_categories)
            if stored_reference is None:
                return None
            referenced = dict(stored_reference)
        for part in reference_parts:
            for (version, item), n in found[(part.start, part.end)].items():
                if reference.version is None or version == reference.version:
                    referenced[item] = referenced.get(item, 0) + n
        groups = len(referenced) + sum(len(c) for c in current.values())
        if groups >= (max_categories + 1) * (versions + 1) + 1:
            return None  # the full query decides which of too many categories it returns
        distinct = len({v for v in referenced if v is not None}
                       | {v for c in current.values() for v in c if v is not None})
        reference_nulls = referenced.pop(None, 0)
        nulls = {version: c.pop(None, 0) for version, c in current.items()}
        return CategoricalSummaries(referenced, reference_nulls, current, nulls, distinct, truncated=False)

    def _reference(self, value: Any, reference: Any, max_categories: int) -> dict[str | None, int] | None:
        """A baseline's or table's value counts: stored once per reference definition and value,
        and reused while its fingerprint (a baseline's count and latest predicted_at, a table's
        row count) holds. None when it has too many values (the full query refuses it)."""
        from evaljobs.drift.queries import DriftInputError, DriftSource

        source, job = self.source, self.source.job
        drift_source = DriftSource(source)
        params = drift_source._params(self.window, reference)
        identity = self._reference_identity(value, reference)
        if identity is None:
            return None
        key, current = identity
        kept = self.reference_summaries.get(key)
        if kept is not None and kept.fingerprint == current:
            self.reused += 1
            return {item: int(n) for item, n in json.loads(kept.payload)}
        limit = max_categories + 2
        try:
            rows = drift_source._run("incremental_reference_counts", value, reference, params | {"row_limit": limit})
        except (DriftInputError, EvaljobsError):
            return None
        if len(rows) >= limit:
            return None
        counts = {row.value: int(row.n) for row in rows}
        self.recomputed += 1
        _save(self.store, job.name, REFERENCE_KIND,
              [(key, current, json.dumps([[item, n] for item, n in counts.items()], separators=(",", ":")))],
              [], "", self.window, self.moment, keep=timedelta(days=3650))
        return counts

    def _reference_identity(self, value: Any, reference: Any, **extra: Any) -> tuple[str, str] | None:
        """A baseline's or table's stored-summary key for ``value`` (its definition, and
        ``extra``) and its fingerprint now; None when the fingerprint cannot be taken."""
        from evaljobs.drift.queries import DriftInputError, DriftSource

        source, job = self.source, self.source.job
        drift_source = DriftSource(source)
        fingerprint_query = ("incremental_reference_fingerprint" if reference.source == "predictions"
                             else "incremental_reference_table_fingerprint")
        try:
            [row] = drift_source._run(fingerprint_query, value, reference, drift_source._params(self.window, reference))
        except (DriftInputError, EvaljobsError):
            return None
        key = hashlib.sha256(json.dumps({
            "model": job.model, "predictions": job.tables.predictions, "version_column": job.columns.model_version,
            "reference": job.drift.reference.model_dump(mode="json"), "value": [value.name, value.column,
            value.reference_column, value.kind], "text_type": source.spec.text_type, **extra,
        }, sort_keys=True, default=str).encode()).hexdigest()[:24]
        return key, fingerprint(int(row.n), row.last_at)

    def numeric_reference(self, value: Any, reference: Any) -> Any:
        """A numeric feature's :class:`~evaljobs.drift.queries.StoredReference` against a
        ``baseline`` or ``table`` reference: its fine bins (``evaljobs.drift.binned.ReferenceBins``)
        stored once (kind ``reference``, keyed by the reference's definition, the value and the
        bins' constants) and reused while the reference's fingerprint holds, as the categorical
        counts are. None for other references, label drift, or when no fingerprint can be taken."""
        from evaljobs.drift import binned
        from evaljobs.drift.queries import StoredReference

        job = self.source.job
        kind = job.drift.reference.kind if job.drift else None
        if value.is_label or value.kind != "numeric" or kind not in ("baseline", "table"):
            return None
        identity = self._reference_identity(
            value, reference, summary="fine_bins", float_type=self.source.spec.float_type,
            bins=[binned.SCALE, binned.MIN_MAGNITUDE, binned.LARGEST_SQUARED])
        if identity is None:
            return None
        key, current = identity
        kept, bins = self.reference_summaries.get(key), None
        if kept is not None and kept.fingerprint == current:
            try:
                bins = binned.ReferenceBins.from_payload(kept.payload)
                self.reused += 1
            except (ValueError, KeyError, TypeError):
                bins = None  # unreadable: read the reference again and store it anew

        def save(found: "binned.ReferenceBins") -> None:
            self.recomputed += 1
            _save(self.store, job.name, REFERENCE_KIND, [(key, current, found.to_payload())], [], "",
                  self.window, self.moment, keep=timedelta(days=3650))

        return StoredReference(bins, save)

    def _part_counts(self, value: Any, wanted: dict[int, Part], max_categories: int,
                     versions: int) -> dict[tuple[datetime, datetime], dict[tuple, int]] | None:
        """Per part (by bounds): (version, value) -> predictions, reusing stored parts."""
        source = self.source
        identity = f"{value.name}/{value.column}/{value.kind}"
        out: dict[tuple[datetime, datetime], dict[tuple, int]] = {}
        stale: set[int] = set()
        for number, part in wanted.items():
            if number not in self.counts:
                out[(part.start, part.end)] = {}
                continue
            summary = self.stored.get(f"{part_key(self.digest, part)}/{identity}")
            if summary is None or summary.fingerprint != self.counts[number]:
                stale.add(number)
            else:
                out[(part.start, part.end)] = {(v, item): int(n) for v, item, n in json.loads(summary.payload)}
                self.reused += 1
        written = []
        per_part = (max_categories + 2) * max(versions, 1) * 2
        expression = f"CAST(p.{source.quote(value.column)} AS {source.spec.text_type})"
        for first, last in query_ranges(stale):
            start, end = wanted[first].start, wanted[last].end
            numbers = set(range(first, last + 1))
            limit = per_part * len(numbers) + 1
            params = self.base | {"window_start": source.bind_time(start), "window_end": source.bind_time(end),
                                  "row_limit": limit}
            try:
                rows = source.query("incremental_drift_counts", params, {"current_value": expression})
            except EvaljobsError:
                return None  # the full query reports what is wrong with the value
            if len(rows) >= limit:
                return None  # too many categories for parts: the full query refuses the value
            fresh: dict[int, dict[tuple, int]] = {}
            for row in rows:
                _check_number(row.part, numbers)
                fresh.setdefault(int(row.part), {})[(row.model_version, row.value)] = int(row.n)
            for number in numbers:
                if number not in wanted:
                    continue
                part = wanted[number]
                out[(part.start, part.end)] = fresh.get(number, {})
                self.recomputed += 1
                if number in self.counts:
                    written.append((f"{part_key(self.digest, part)}/{identity}", self.counts[number],
                                    json.dumps([[v, item, n] for (v, item), n in out[(part.start, part.end)].items()],
                                               separators=(",", ":"))))
        _save(self.store, source.job.name, DRIFT_KIND, written, [], "", self.window, self.moment,
              keep=2 * self.window.length)
        return out


def _part_fingerprints(source: JobSource, base: dict[str, Any], plan: PartPlan, start: datetime, end: datetime,
                       numbers: set[int], kept: "Summary | None", labels: bool = False
                       ) -> tuple[dict[int, str], dict[int, tuple[int, str]], int, int]:
    """Each part's fingerprint (count and latest predicted_at) over ``[start, end)`` (whole grid
    parts): ``(fingerprints, (count, latest as text) per part, statements, parts verified at once)``.

    The previous run's counts (``kept``, kind ``part_counts``) are checked with one aggregate over
    the parts it counted, all but its newest (``sql/incremental_part_fingerprints.sql``): their
    total, latest predicted_at and the sum of the predictions' part numbers. When that agrees,
    those parts are unchanged and keep their counts; only the parts since are counted one by
    one. Otherwise (a late or removed prediction in an old part) every part is counted again
    (``sql/incremental_part_counts.sql``), as without stored counts. With ``labels``, the same for
    the parts of label arrival time (``sql/incremental_label_counts.sql``, the orphan parts').
    """
    counts_query, check_query, low_name, high_name = (
        ("incremental_label_counts", "incremental_label_fingerprints", "arrived_from", "labels_as_of") if labels
        else ("incremental_part_counts", "incremental_part_fingerprints", "window_start", "window_end"))

    def per_part(low: datetime, high: datetime) -> dict[int, tuple[int, str]]:
        found = {}
        for part, count, last in source.query(counts_query, base | {low_name: source.bind_time(low),
                                                                   high_name: source.bind_time(high)}):
            _check_number(part, numbers)
            found[int(part)] = (int(count), str(last))
        return found

    previous = json.loads(kept.payload) if kept is not None else None
    first, last = min(numbers), max(numbers)
    if previous is None or previous["first"] > first or min(previous["last"] - 1, last) < first:
        return *_fingerprinted(per_part(start, end)), 1, 0  # nothing stored covers these parts' start
    verified_last = min(previous["last"] - 1, last)  # the previous run's newest part is counted again
    kept_parts = {int(n): (int(c), str(t)) for n, c, t in previous["parts"] if first <= int(n) <= verified_last}
    verified_to = _EPOCH + timedelta(seconds=plan.offset_seconds) + (verified_last + 1) * timedelta(
        seconds=plan.part_seconds)
    raw: dict[int, tuple[int, str]] = {}
    checked = None
    for number, count, latest, part_sum in source.query(check_query, base | {
            "verified_from": source.bind_time(start), "verified_to": source.bind_time(verified_to),
            "first_part": first, high_name: source.bind_time(end)}):
        if number is None:  # the verified parts' aggregate
            checked = (int(count), None if latest is None else str(latest), int(part_sum or 0))
        else:
            _check_number(number, numbers)
            raw[int(number)] = (int(count), str(latest))
    # Parts are in time order, so the verified parts' latest time is that of the newest with rows.
    newest = max(kept_parts, default=None)
    expected = (sum(c for c, _ in kept_parts.values()), None if newest is None else kept_parts[newest][1],
                sum((n - first) * c for n, (c, _) in kept_parts.items()))
    if checked == expected:
        return *_fingerprinted(raw | kept_parts), 1, verified_last - first + 1
    return *_fingerprinted(raw | per_part(start, verified_to)), 2, 0


def _counts_payload(numbers: set[int], raw: dict[int, tuple[int, str]]) -> str:
    """What :func:`_part_fingerprints` checks next run: the parts counted and their counts."""
    return json.dumps({"first": min(numbers), "last": max(numbers),
                       "parts": [[n, c, last] for n, (c, last) in sorted(raw.items())]}, separators=(",", ":"))


def _fingerprinted(raw: dict[int, tuple[int, str]]) -> tuple[dict[int, str], dict[int, tuple[int, str]]]:
    return {n: fingerprint(c, t) for n, (c, t) in raw.items()}, raw


def _check_number(number: Any, numbers: set[int]) -> None:
    if number is None or int(number) not in numbers:
        # The database numbered a row outside the parts asked for: a bug, not bad input.
        raise RuntimeError(f"incremental part {number!r} is not one of the parts asked for")


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


def _delay_columns(row: Any, labeled_only: bool = False) -> DelayCounts:
    mapping = row._mapping
    total = optional_float(row.delay_sum)
    return DelayCounts(0 if labeled_only else int(row.predictions), int(row.labeled),
                       [] if total is None else [total], optional_float(row.min_delay),
                       [int(mapping[f"le_{i}"]) for i in range(len(DELAY_BUCKETS))],
                       [int(mapping[f"within_{k}"]) for k in MULTIPLES])


def _delay_slots() -> dict[str, str]:
    return {"bucket_counts": bucket_columns(len(DELAY_BUCKETS), "delay_seconds"),
            "within_all": ",\n    ".join(f"COUNT(CASE WHEN delay_seconds <= :delay_{k} THEN 1 END) AS within_{k}"
                                         for k in MULTIPLES)}


def _delays(source: JobSource, window: Window, plan: PartPlan, counts: dict[int, str], digest: str,
            stored: dict[str, "Summary"], base: dict[str, Any], dues: Sequence[datetime], store: "ResultsStore",
            moment: datetime) -> tuple[dict[str, LabelDelay], list[Problem], tuple[int, int], int]:
    """Label delays (sql/label_delays.sql's numbers) from parts of the look-back."""
    job = source.job
    as_of = window.labels_as_of.isoformat()
    params = base | {f"le_{i}": bound for i, bound in enumerate(DELAY_BUCKETS)} | {
        f"delay_{k}": (k * job.label_delay).total_seconds() for k in MULTIPLES}
    by_number = {p.number: p for p in plan.parts}
    numbers = set(by_number)
    reuse = _reuse(stored, plan.parts, counts, digest, as_of)
    parts = {n: {} for n in numbers}
    queries = 0
    for number, payload in reuse.payloads.items():
        parts[number] = delays_from_payload(payload)
    updated: set[int] = set()
    for old, members in reuse.as_ofs.items():
        stored_as_of = datetime.fromisoformat(old)
        if stored_as_of > window.labels_as_of:
            # An earlier labels_as_of (a backfill) can take first labels away: read those parts again.
            reuse.stale |= members
            continue
        rows = source.query("incremental_delay_changes", params | {"changed_from": source.bind_time(stored_as_of)},
                            _delay_slots())
        queries += 1
        changes: dict[int, dict[str | None, DelayCounts]] = {}
        for row in rows:
            _check_number(row.part, numbers)
            if int(row.part) in members:
                changes.setdefault(int(row.part), {})[row.model_version] = _delay_columns(row, labeled_only=True)
        for number, change in changes.items():
            parts[number] = add_first_labels(parts[number], change)
            updated.add(number)
    touched = {old: [part_key(digest, by_number[n]) for n in members if n not in updated and n not in reuse.stale]
               for old, members in reuse.as_ofs.items()}
    written = {n: (part_key(digest, by_number[n]), counts[n], parts[n]) for n in sorted(updated - reuse.stale)}
    recomputed = 0
    for first, last in query_ranges(reuse.stale):
        run = params | {"lookback_start": source.bind_time(by_number[first].start),
                        "window_end": source.bind_time(by_number[last].end)}
        found: dict[int, dict[str | None, DelayCounts]] = {}
        for row in source.query("incremental_delay_parts", run, _delay_slots()):
            _check_number(row.part, numbers)
            found.setdefault(int(row.part), {})[row.model_version] = _delay_columns(row)
        queries += 1
        for number in range(first, last + 1):
            parts[number] = found.get(number, {})
            recomputed += 1
            if number in counts:
                written[number] = (part_key(digest, by_number[number]), counts[number], parts[number])
    _save(store, job.name, DELAY_KIND, [(k, fp, delays_to_payload(p)) for k, fp, p in written.values()], touched,
          as_of, window, moment, keep=lookback(window, job.label_delay), stored=stored)
    out: dict[str, LabelDelay] = {}
    problems: list[Problem] = []
    merged = merge_delays([(by_number[n], parts[n]) for n in sorted(numbers)], dues)
    for version in sorted(merged, key=lambda v: (v is None, v or "")):
        total, due, within = merged[version]
        if not total.predictions:
            continue
        record, problem = delay_record(job.name, version, job.label_delay, total.predictions, total.labeled,
                                       math.fsum(total.sums) if total.sums else None, total.low,
                                       tuple(total.cumulative),
                                       tuple((k, due[i], within[i]) for i, k in enumerate(MULTIPLES)))
        if problem:
            problems.append(problem)
        out[version] = record
    return out, problems, (len(reuse.payloads), recomputed), queries


def _totals_before(source: JobSource, window: Window, digest: str, stored: dict[str, "Summary"],
                   store: "ResultsStore", moment: datetime) -> tuple[dict[str, int], int]:
    """Per version, the predictions made before the window: a stored count before an earlier
    window's start plus those made since (an index range), instead of counting all history."""
    job = source.job
    kept = stored.get(digest)
    kept_start = datetime.fromisoformat(json.loads(kept.payload)["start"]) if kept else None
    counted_from, totals = _HISTORY_START, {}
    if kept_start is not None and kept_start <= window.start:
        counted_from = kept_start
        totals = {v: int(n) for v, n in json.loads(kept.payload)["totals"].items()}
    params = {"model": job.model, "counted_from": source.bind_time(counted_from),
              "window_start": source.bind_time(window.start)}
    for row in source.query("incremental_counts_between", params):
        totals[row.model_version] = totals.get(row.model_version, 0) + int(row.predictions)
    if kept_start is None or window.start >= kept_start:  # a backfill's earlier window keeps the later count
        payload = json.dumps({"start": window.start.isoformat(), "totals": totals}, separators=(",", ":"))
        _save(store, job.name, HISTORY_KIND, [(digest, "", payload)], [], window.start.isoformat(), window, moment,
              keep=timedelta(days=3650))
    return totals, 1


def _orphans(source: JobSource, window: Window, plan: PartPlan, digest: str, stored: dict[str, "Summary"],
             base: dict[str, Any], reread: Sequence[tuple[datetime, datetime]], store: "ResultsStore",
             moment: datetime, kept_counts: "Summary | None" = None) -> tuple[int, int, int, str | None]:
    """Labels that arrived in ``[labels_as_of - window length, labels_as_of)`` for prediction ids
    that match no prediction, per part of arrival time: stored, and counted again for the parts
    whose labels changed (count and latest labeled_at) or that hold labels of predictions this
    run read again. The arrival parts' fingerprints are checked at once when the previous run
    stored them (:func:`_part_fingerprints`). ``(orphans, parts counted again, statements, this
    run's arrival-part counts to store or None)``."""
    arrived_from = window.labels_as_of - window.length
    params = base | {"arrived_from": source.bind_time(arrived_from)}
    arrivals = plan_parts(Window(arrived_from, window.labels_as_of, window.evaluated_at, window.labels_as_of),
                          timedelta(seconds=plan.part_seconds))
    if arrivals is None or not on_grid(window.labels_as_of, plan):
        # Label arrival parts off the window's grid (a label_delay that is not a whole number of
        # parts): count them all, as the full query does.
        # Stored arrival parts are forgotten: this run's re-read predictions would not be checked
        # against them (sql/incremental_orphan_touch.sql), so a later run counts them afresh.
        whole = [int(row.orphans) for row in source.query("incremental_orphan_parts", params | {
            "part_offset": 0, "part_seconds": int(window.length.total_seconds()) * 4 + 1})]
        if stored:
            _save(store, source.job.name, ORPHAN_KIND, [], [], "", window, moment, forget=True)
        return sum(whole), 0, 1, None
    by_number = {p.number: p for p in arrivals.parts}
    numbers = set(by_number)
    # Checked at once only over whole grid parts (a clipped first part's count covers less).
    whole_parts = on_grid(arrived_from, plan)
    counts, raw, queries, _ = _part_fingerprints(source, params, plan, arrived_from, window.labels_as_of, numbers,
                                                 kept_counts if whole_parts else None, labels=True)
    reuse = _reuse(stored, arrivals.parts, counts, digest, "")
    for start, end in reread:
        rows = source.query("incremental_orphan_touch", params | {"window_start": source.bind_time(start),
                                                                   "window_end": source.bind_time(end)})
        queries += 1
        for row in rows:
            _check_number(row.part, numbers)
            if int(row.part) in counts:
                reuse.stale.add(int(row.part))
    found: dict[int, int] = {n: int(p) for n, p in reuse.payloads.items() if n not in reuse.stale}
    written = []
    recomputed = 0
    for first, last in query_ranges(reuse.stale):
        run = params | {"arrived_from": source.bind_time(by_number[first].start),
                        "labels_as_of": source.bind_time(by_number[last].end)}
        fresh = {}
        for row in source.query("incremental_orphan_parts", run):
            _check_number(row.part, numbers)
            fresh[int(row.part)] = int(row.orphans)
        queries += 1
        for number in range(first, last + 1):
            found[number] = fresh.get(number, 0)
            recomputed += 1
            if number in counts:
                written.append((part_key(digest, by_number[number]), counts[number], str(found[number])))
    _save(store, source.job.name, ORPHAN_KIND, written, [], "", window, moment)
    return sum(found.values()), recomputed, queries, _counts_payload(numbers, raw) if whole_parts else None


def touch_plan(stored: dict[str, "Summary"], touched: dict[str, Sequence[str]], rewritten: Iterable[str]
               ) -> tuple[list[tuple[str, str, str]], list[str]]:
    """How to move the ``touched`` keys (old as_of -> keys) to this run's as_of: one key range
    ``(old as_of, first key, last key)`` per old as_of when the stored keys at that as_of in
    that range are exactly those keys (and keys ``rewritten`` in the same transaction), so that
    one UPDATE moves them all; otherwise (another window's part inside the range, say) the keys
    one by one."""
    rewritten = set(rewritten)
    ranges, single = [], []
    for old, keys in touched.items():
        if not keys:
            continue
        low, high = min(keys), max(keys)
        inside = {key for key, summary in stored.items() if summary.as_of == old and low <= key <= high}
        if inside - rewritten == set(keys):
            ranges.append((old, low, high))
        else:
            single.extend(keys)
    return ranges, single


class _Batched:
    """Collects :meth:`ResultsStore.save_summaries` calls, to write them in one transaction."""

    def __init__(self) -> None:
        self.batches: list[Any] = []

    def save_summaries(self, job: str, kind: str, written: Sequence[Any], touched: Sequence[str], as_of: str,
                       now: datetime, stale_before: datetime, touched_ranges: Sequence[tuple[str, str, str]] = ()
                       ) -> None:
        from evaljobs.ops.store import SummaryBatch

        self.batches.append(SummaryBatch(kind, written, touched, as_of, now, stale_before, touched_ranges))


def _save(store: "ResultsStore", job: str, kind: str, written: Sequence[tuple[str, str, str]],
          touched: dict[str, Sequence[str]] | Sequence[str], as_of: str, window: Window, moment: datetime,
          keep: timedelta | None = None, forget: bool = False, stored: dict[str, "Summary"] | None = None) -> None:
    from evaljobs.ops.store import Summary

    keep = max(2 * (keep or window.length), timedelta(days=1))
    # Parts are kept while used; unused for twice their span, they go (forget: all of the kind).
    stale_before = moment + timedelta(days=1) if forget else moment - keep
    ranges: list[tuple[str, str, str]] = []
    if isinstance(touched, dict):
        ranges, touched = touch_plan(stored or {}, touched, (key for key, _, _ in written))
    try:
        store.save_summaries(job, kind, [Summary(key, fp, as_of, payload) for key, fp, payload in written],
                             touched, as_of, moment, stale_before=stale_before, touched_ranges=ranges)
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
