"""Incremental windows' parts, pure: the grid that cuts a window into parts, each part's
mergeable aggregates (confusion cells, latency and label-delay counts) with their stored
payloads, and how parts are merged into a window's numbers. No database and no results store
here: :mod:`evaljobs.ops.incremental.queries` reads parts from the data and
:mod:`evaljobs.ops.incremental.evaluate` decides which to reuse, recompute and store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from evaljobs.db.source import ConfusionCell
from evaljobs.windows import Window

#: At most this many statements recompute stale parts; beyond, the closest runs are joined.
MAX_RECOMPUTE_QUERIES = 8
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# ---- the grid ------------------------------------------------------------------------------------
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
    offset = (window.end - EPOCH) % part
    if offset.microseconds:
        return None
    return parts_between(window.start, window.end, PartPlan((), int(offset.total_seconds()),
                                                            int(part.total_seconds())))


def parts_between(start: datetime, end: datetime, grid: PartPlan) -> PartPlan:
    """The parts of ``grid`` that meet ``[start, end)``, clipped to it."""
    part, offset = timedelta(seconds=grid.part_seconds), timedelta(seconds=grid.offset_seconds)
    first = (start - EPOCH - offset) // part
    last = -((-(end - EPOCH - offset)) // part) - 1  # the part that holds the instant before end
    parts = tuple(
        Part(n, max(start, EPOCH + offset + n * part), min(end, EPOCH + offset + (n + 1) * part))
        for n in range(first, last + 1))
    return PartPlan(parts, grid.offset_seconds, grid.part_seconds)


def grid_floor(moment: datetime, grid: PartPlan) -> datetime:
    """The start of the grid part that holds ``moment``."""
    part, offset = timedelta(seconds=grid.part_seconds), timedelta(seconds=grid.offset_seconds)
    return EPOCH + offset + ((moment - EPOCH - offset) // part) * part


def on_grid(moment: datetime, plan: PartPlan) -> bool:
    """Whether ``moment`` is a boundary of the plan's grid."""
    return (moment - EPOCH - timedelta(seconds=plan.offset_seconds)) % timedelta(seconds=plan.part_seconds) \
        == timedelta(0)


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

# ---- the mergeable aggregates -------------------------------------------------------------------
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


# ---- stored parts' keys and fingerprints ---------------------------------------------------
def part_key(digest: str, part: Part) -> str:
    return f"{digest}/{part.start.isoformat()}/{part.end.isoformat()}"


def fingerprint(count: int, last: Any) -> str:
    return f"{count}/{last}"
