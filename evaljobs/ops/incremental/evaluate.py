"""Incremental windows' orchestration: which parts of a window (and of its label-delay look-back
and label arrival span) still hold, which are recomputed and which are stored, and the
window's records from them (:func:`evaluate_incremental`). The parts' maths is
:mod:`evaljobs.ops.incremental.parts`, their SQL :mod:`evaljobs.ops.incremental.queries`, the
results store's side :mod:`evaljobs.ops.incremental.stored`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from evaljobs.db.source import ConfusionCell, JobSource
from evaljobs.errors import EvaljobsError
from evaljobs.ops.incremental.drift import DriftParts
from evaljobs.ops.incremental.parts import (
    PartAggregates,
    PartPlan,
    add_first_labels,
    apply_change,
    cells_of,
    delays_from_payload,
    delays_to_payload,
    grid_floor,
    latency_sum,
    merge,
    merge_delays,
    on_grid,
    part_key,
    parts_between,
    plan_parts,
    query_ranges,
)
from evaljobs.ops.incremental.queries import (
    arrival_parts_touched,
    compute_parts,
    counts_payload,
    delay_parts,
    first_label_changes,
    label_changes,
    orphan_parts,
    part_fingerprints,
)
from evaljobs.ops.incremental.stored import (
    DELAY_KIND,
    DRIFT_KIND,
    FINGERPRINTS_KIND,
    HISTORY_KIND,
    KIND,
    ORPHAN_KIND,
    REFERENCE_KIND,
    Batched,
    reuse_parts,
    save_parts,
)
from evaljobs.quality.classification import require_keys, version_result
from evaljobs.quality.label_delay import DELAY_BUCKETS, MULTIPLES, delay_record, lookback
from evaljobs.quality.latency import latency_record
from evaljobs.records import LabelDelay, LatencyHistogram, Problem, TaskResult
from evaljobs.windows import Window, schedule_interval

if TYPE_CHECKING:
    from evaljobs.ops.store import ResultsStore, Summary

log = logging.getLogger("evaljobs.incremental")

#: Where a count of "all predictions before the window" starts when nothing is stored.
_HISTORY_START = datetime(1900, 1, 1, tzinfo=timezone.utc)
#: A window of more parts than this is evaluated whole (a part too short for it: say so).
MAX_PARTS = 2500


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
    """Whether the job's window can be evaluated from parts (see :mod:`evaljobs.ops.incremental`)."""
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
    results_store, store = store, Batched()  # this run's parts are written in one transaction at the end
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
    counts, raw, queries, verified = part_fingerprints(source, base, plan, span_start, window.end, numbers,
                                                       stored[FINGERPRINTS_KIND].get(digest))
    written_counts = [(digest, "", counts_payload(numbers, raw))]

    # ---- the window's cells and latency ----
    by_number = {p.number: p for p in plan.parts}
    window_numbers = set(by_number)
    reuse = reuse_parts(stored[KIND], plan.parts, counts, digest, as_of)
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
        changes = label_changes(source, base, low, high, stored_as_of, window_numbers)
        queries += 1
        for number, change in ((n, c) for n, c in changes.items() if n in members):
            aggregates[number] = apply_change(aggregates[number], change)
            updated.add(number)
    touched = {old: [part_key(digest, by_number[n]) for n in members if n not in updated]
               for old, members in reuse.as_ofs.items()}
    written = {n: (part_key(digest, by_number[n]), counts[n], aggregates[n]) for n in sorted(updated)}
    recomputed: set[int] = set()
    reread: list[tuple[datetime, datetime]] = []
    for first, last in query_ranges(reuse.stale):
        start, end = by_number[first].start, by_number[last].end
        found, statements = compute_parts(source, base, start, end, with_latency, window_numbers)
        queries += statements
        reread.append((start, end))
        for number in range(first, last + 1):
            aggregates[number] = found.get(number, PartAggregates())
            recomputed.add(number)
            if number in counts:
                written[number] = (part_key(digest, by_number[number]), counts[number], aggregates[number])
    save_parts(store, job.name, KIND, [(k, fp, a.to_payload()) for k, fp, a in written.values()], touched, as_of,
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
    save_parts(store, job.name, FINGERPRINTS_KIND, written_counts, [], "", window, moment,
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
    reuse = reuse_parts(stored, plan.parts, counts, digest, as_of)
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
        changes = first_label_changes(source, params, stored_as_of, numbers)
        queries += 1
        for number, change in ((n, c) for n, c in changes.items() if n in members):
            parts[number] = add_first_labels(parts[number], change)
            updated.add(number)
    touched = {old: [part_key(digest, by_number[n]) for n in members if n not in updated and n not in reuse.stale]
               for old, members in reuse.as_ofs.items()}
    written = {n: (part_key(digest, by_number[n]), counts[n], parts[n]) for n in sorted(updated - reuse.stale)}
    recomputed = 0
    for first, last in query_ranges(reuse.stale):
        run = params | {"lookback_start": source.bind_time(by_number[first].start),
                        "window_end": source.bind_time(by_number[last].end)}
        found = delay_parts(source, run, numbers)
        queries += 1
        for number in range(first, last + 1):
            parts[number] = found.get(number, {})
            recomputed += 1
            if number in counts:
                written[number] = (part_key(digest, by_number[number]), counts[number], parts[number])
    save_parts(store, job.name, DELAY_KIND, [(k, fp, delays_to_payload(p)) for k, fp, p in written.values()], touched,
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
        save_parts(store, job.name, HISTORY_KIND, [(digest, "", payload)], [], window.start.isoformat(), window, moment,
                   keep=timedelta(days=3650))
    return totals, 1


def _orphans(source: JobSource, window: Window, plan: PartPlan, digest: str, stored: dict[str, "Summary"],
             base: dict[str, Any], reread: Sequence[tuple[datetime, datetime]], store: "ResultsStore",
             moment: datetime, kept_counts: "Summary | None" = None) -> tuple[int, int, int, str | None]:
    """Labels that arrived in ``[labels_as_of - window length, labels_as_of)`` for prediction ids
    that match no prediction, per part of arrival time: stored, and counted again for the parts
    whose labels changed (count and latest labeled_at) or that hold labels of predictions this
    run read again. The arrival parts' fingerprints are checked at once when the previous run
    stored them (:func:`~evaljobs.ops.incremental.queries.part_fingerprints`). ``(orphans, parts
    counted again, statements, this run's arrival-part counts to store or None)``."""
    arrived_from = window.labels_as_of - window.length
    params = base | {"arrived_from": source.bind_time(arrived_from)}
    arrivals = plan_parts(Window(arrived_from, window.labels_as_of, window.evaluated_at, window.labels_as_of),
                          timedelta(seconds=plan.part_seconds))
    if arrivals is None or not on_grid(window.labels_as_of, plan):
        # Label arrival parts off the window's grid (a label_delay that is not a whole number of
        # parts): count them all, as the full query does.
        # Stored arrival parts are forgotten: this run's re-read predictions would not be checked
        # against them (sql/incremental_orphan_touch.sql), so a later run counts them afresh.
        whole = orphan_parts(source, params | {
            "part_offset": 0, "part_seconds": int(window.length.total_seconds()) * 4 + 1}, None).values()
        if stored:
            save_parts(store, source.job.name, ORPHAN_KIND, [], [], "", window, moment, forget=True)
        return sum(whole), 0, 1, None
    by_number = {p.number: p for p in arrivals.parts}
    numbers = set(by_number)
    # Checked at once only over whole grid parts (a clipped first part's count covers less).
    whole_parts = on_grid(arrived_from, plan)
    counts, raw, queries, _ = part_fingerprints(source, params, plan, arrived_from, window.labels_as_of, numbers,
                                                kept_counts if whole_parts else None, labels=True)
    reuse = reuse_parts(stored, arrivals.parts, counts, digest, "")
    for start, end in reread:
        touched = arrival_parts_touched(source, params, start, end, numbers)
        queries += 1
        reuse.stale |= {number for number in touched if number in counts}
    found: dict[int, int] = {n: int(p) for n, p in reuse.payloads.items() if n not in reuse.stale}
    written = []
    recomputed = 0
    for first, last in query_ranges(reuse.stale):
        run = params | {"arrived_from": source.bind_time(by_number[first].start),
                        "labels_as_of": source.bind_time(by_number[last].end)}
        fresh = orphan_parts(source, run, numbers)
        queries += 1
        for number in range(first, last + 1):
            found[number] = fresh.get(number, 0)
            recomputed += 1
            if number in counts:
                written.append((part_key(digest, by_number[number]), counts[number], str(found[number])))
    save_parts(store, source.job.name, ORPHAN_KIND, written, [], "", window, moment)
    return sum(found.values()), recomputed, queries, counts_payload(numbers, raw) if whole_parts else None


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
