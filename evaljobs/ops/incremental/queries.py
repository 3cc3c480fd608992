"""Incremental windows' part queries: each runs one ``sql/incremental_*.sql`` statement over a
span of grid parts and reads its rows into the parts' aggregates (:mod:`evaljobs.ops.incremental.parts`),
checking that the database numbered every row with a part that was asked for. Which parts to
read, reuse and store is :mod:`evaljobs.ops.incremental.evaluate`'s.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from evaljobs.db.source import JobSource, optional_float
from evaljobs.ops.incremental.parts import EPOCH, DelayCounts, LatencyCounts, PartAggregates, PartPlan, fingerprint
from evaljobs.quality.label_delay import DELAY_BUCKETS, MULTIPLES
from evaljobs.quality.latency import bucket_columns

if TYPE_CHECKING:
    from evaljobs.ops.store import Summary


# ---- fingerprints ----------------------------------------------------------------------------------
def part_fingerprints(source: JobSource, base: dict[str, Any], plan: PartPlan, start: datetime, end: datetime,
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
            check_number(part, numbers)
            found[int(part)] = (int(count), str(last))
        return found

    previous = json.loads(kept.payload) if kept is not None else None
    first, last = min(numbers), max(numbers)
    if previous is None or previous["first"] > first or min(previous["last"] - 1, last) < first:
        return *_fingerprinted(per_part(start, end)), 1, 0  # nothing stored covers these parts' start
    verified_last = min(previous["last"] - 1, last)  # the previous run's newest part is counted again
    kept_parts = {int(n): (int(c), str(t)) for n, c, t in previous["parts"] if first <= int(n) <= verified_last}
    verified_to = EPOCH + timedelta(seconds=plan.offset_seconds) + (verified_last + 1) * timedelta(
        seconds=plan.part_seconds)
    raw: dict[int, tuple[int, str]] = {}
    checked = None
    for number, count, latest, part_sum in source.query(check_query, base | {
            "verified_from": source.bind_time(start), "verified_to": source.bind_time(verified_to),
            "first_part": first, high_name: source.bind_time(end)}):
        if number is None:  # the verified parts' aggregate
            checked = (int(count), None if latest is None else str(latest), int(part_sum or 0))
        else:
            check_number(number, numbers)
            raw[int(number)] = (int(count), str(latest))
    # Parts are in time order, so the verified parts' latest time is that of the newest with rows.
    newest = max(kept_parts, default=None)
    expected = (sum(c for c, _ in kept_parts.values()), None if newest is None else kept_parts[newest][1],
                sum((n - first) * c for n, (c, _) in kept_parts.items()))
    if checked == expected:
        return *_fingerprinted(raw | kept_parts), 1, verified_last - first + 1
    return *_fingerprinted(raw | per_part(start, verified_to)), 2, 0


def counts_payload(numbers: set[int], raw: dict[int, tuple[int, str]]) -> str:
    """What :func:`part_fingerprints` checks next run: the parts counted and their counts."""
    return json.dumps({"first": min(numbers), "last": max(numbers),
                       "parts": [[n, c, last] for n, (c, last) in sorted(raw.items())]}, separators=(",", ":"))


def _fingerprinted(raw: dict[int, tuple[int, str]]) -> tuple[dict[int, str], dict[int, tuple[int, str]]]:
    return {n: fingerprint(c, t) for n, (c, t) in raw.items()}, raw


# ---- the window's cells and latency ---------------------------------------------------------------
def compute_parts(source: JobSource, base: dict[str, Any], start: datetime, end: datetime, with_latency: bool,
                  numbers: set[int]) -> tuple[dict[int, PartAggregates], int]:
    """The aggregates of the parts in ``[start, end)``, from one statement (two with latency)."""
    params = base | {"window_start": source.bind_time(start), "window_end": source.bind_time(end)}
    out: dict[int, PartAggregates] = {}
    for row in source.query("incremental_part_cells", params):
        check_number(row.part, numbers)
        cells = out.setdefault(int(row.part), PartAggregates()).cells
        cells[(row.model_version, row.label, row.predicted_label)] = int(row.predictions)
    if not with_latency:
        return out, 1
    bounds = tuple(source.job.latency_buckets)
    params |= {f"le_{i}": bound for i, bound in enumerate(bounds)}
    for row in source.query("incremental_part_latency", params, {"bucket_counts": bucket_columns(len(bounds))}):
        check_number(row.part, numbers)
        mapping = row._mapping
        total = optional_float(row.latency_sum)
        out.setdefault(int(row.part), PartAggregates()).latency[row.model_version] = LatencyCounts(
            int(row.predictions), int(row.observed), [] if total is None else [total],
            optional_float(row.min_latency), optional_float(row.max_latency),
            [int(mapping[f"le_{i}"]) for i in range(len(bounds))])
    return out, 2

def label_changes(source: JobSource, base: dict[str, Any], changed_from: datetime, changed_to: datetime,
                  stored_as_of: datetime, numbers: set[int]) -> dict[int, dict[tuple, int]]:
    """Per part, how late labels moved its predictions between cells
    (``sql/incremental_label_changes.sql``): the predictions whose labels arrived in
    ``[changed_from, changed_to)``, as of ``stored_as_of`` and as of this run, ``(version, label,
    predicted) -> change`` (cells that do not change are left out)."""
    rows = source.query("incremental_label_changes", base | {
        "changed_from": source.bind_time(changed_from), "changed_to": source.bind_time(changed_to),
        "stored_as_of": source.bind_time(stored_as_of)})
    changes: dict[int, dict[tuple, int]] = {}
    for row in rows:
        check_number(row.part, numbers)
        if int(row.change):
            changes.setdefault(int(row.part), {})[(row.model_version, row.label, row.predicted_label)] = \
                int(row.change)
    return changes


# ---- label delays over the look-back ---------------------------------------------------------------
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

def delay_parts(source: JobSource, params: dict[str, Any], numbers: set[int]
                ) -> dict[int, dict[str | None, DelayCounts]]:
    """Per part of ``[:lookback_start, :window_end)`` and version, the label-delay counts
    (``sql/incremental_delay_parts.sql``)."""
    found: dict[int, dict[str | None, DelayCounts]] = {}
    for row in source.query("incremental_delay_parts", params, _delay_slots()):
        check_number(row.part, numbers)
        found.setdefault(int(row.part), {})[row.model_version] = _delay_columns(row)
    return found


def first_label_changes(source: JobSource, params: dict[str, Any], changed_from: datetime, numbers: set[int]
                        ) -> dict[int, dict[str | None, DelayCounts]]:
    """Per part and version, the predictions whose first label arrived since ``changed_from``
    (``sql/incremental_delay_changes.sql``): their count as ``labeled`` and their delays."""
    rows = source.query("incremental_delay_changes", params | {"changed_from": source.bind_time(changed_from)},
                        _delay_slots())
    changes: dict[int, dict[str | None, DelayCounts]] = {}
    for row in rows:
        check_number(row.part, numbers)
        changes.setdefault(int(row.part), {})[row.model_version] = _delay_columns(row, labeled_only=True)
    return changes


# ---- orphan labels, per part of arrival time ------------------------------------------------------
def orphan_parts(source: JobSource, params: dict[str, Any], numbers: set[int] | None) -> dict[int, int]:
    """Per part of label arrival time in ``[:arrived_from, :labels_as_of)``, the labels whose
    prediction id matches no prediction (``sql/incremental_orphan_parts.sql``); ``numbers`` None
    when the parameters' grid is not the window's (one part that holds the whole span)."""
    found: dict[int, int] = {}
    for row in source.query("incremental_orphan_parts", params):
        if numbers is not None:
            check_number(row.part, numbers)
        found[int(row.part)] = int(row.orphans)
    return found


def arrival_parts_touched(source: JobSource, params: dict[str, Any], start: datetime, end: datetime,
                          numbers: set[int]) -> set[int]:
    """The arrival parts holding labels of the predictions made in ``[start, end)``
    (``sql/incremental_orphan_touch.sql``): their orphan counts may have changed."""
    touched: set[int] = set()
    for row in source.query("incremental_orphan_touch", params | {"window_start": source.bind_time(start),
                                                                  "window_end": source.bind_time(end)}):
        check_number(row.part, numbers)
        touched.add(int(row.part))
    return touched


# ---- categorical drift ------------------------------------------------------------------------------
def drift_counts(source: JobSource, params: dict[str, Any], expression: str, numbers: set[int]
                 ) -> dict[int, dict[tuple, int]] | None:
    """Per part and ``(version, value)`` of ``expression``, how many predictions
    (``sql/incremental_drift_counts.sql``); None when it returns ``:row_limit`` rows or more (too
    many categories for parts)."""
    rows = source.query("incremental_drift_counts", params, {"current_value": expression})
    if len(rows) >= params["row_limit"]:
        return None
    fresh: dict[int, dict[tuple, int]] = {}
    for row in rows:
        check_number(row.part, numbers)
        fresh.setdefault(int(row.part), {})[(row.model_version, row.value)] = int(row.n)
    return fresh


def check_number(number: Any, numbers: set[int]) -> None:
    if number is None or int(number) not in numbers:
        # The database numbered a row outside the parts asked for: a bug, not bad input.
        raise RuntimeError(f"incremental part {number!r} is not one of the parts asked for")
