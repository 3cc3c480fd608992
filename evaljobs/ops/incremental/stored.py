"""Incremental windows' parts in the results store (``evaljobs_summaries``): the kinds stored,
which stored parts still hold for this run (:func:`reuse_parts`), and how a run's parts are
written -- collected (:class:`Batched`) and written in one transaction at the end, parts reused
at another labels_as_of moved to this one by key range where possible (:func:`touch_plan`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from evaljobs.errors import EvaljobsError
from evaljobs.ops.incremental.parts import Part, part_key
from evaljobs.windows import Window

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
#: aggregate instead of counting every part of the look-back again
#: (:func:`evaljobs.ops.incremental.queries.part_fingerprints`).
FINGERPRINTS_KIND = "part_counts"


@dataclass
class Reuse:
    """Which stored parts of one kind still hold (their payloads), which must be read again,
    and which stored parts were read at another labels_as_of (as-of text -> part numbers)."""

    payloads: dict[int, str] = field(default_factory=dict)
    stale: set[int] = field(default_factory=set)
    as_ofs: dict[str, set[int]] = field(default_factory=dict)


def reuse_parts(stored: dict[str, "Summary"], parts: Sequence[Part], counts: dict[int, str], digest: str,
                as_of: str) -> Reuse:
    """Which of ``parts`` (those with predictions: in ``counts``) have a stored summary whose
    fingerprint still holds, and at which labels_as_of each was read."""
    out = Reuse()
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


class Batched:
    """Collects :meth:`ResultsStore.save_summaries` calls, to write them in one transaction."""

    def __init__(self) -> None:
        self.batches: list[Any] = []

    def save_summaries(self, job: str, kind: str, written: Sequence[Any], touched: Sequence[str], as_of: str,
                       now: datetime, stale_before: datetime, touched_ranges: Sequence[tuple[str, str, str]] = ()
                       ) -> None:
        from evaljobs.ops.store import SummaryBatch

        self.batches.append(SummaryBatch(kind, written, touched, as_of, now, stale_before, touched_ranges))


def save_parts(store: "ResultsStore", job: str, kind: str, written: Sequence[tuple[str, str, str]],
               touched: dict[str, Sequence[str]] | Sequence[str], as_of: str, window: Window, moment: datetime,
               keep: timedelta | None = None, forget: bool = False, stored: dict[str, "Summary"] | None = None) -> None:
    """Store ``written`` ``(key, fingerprint, payload)`` and move ``touched`` keys to ``as_of``
    (old as_of -> keys, or a list of keys); a failure is logged, not raised."""
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
