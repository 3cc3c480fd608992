"""Incremental windows' categorical drift and stored drift references (:class:`DriftParts`),
which :mod:`evaljobs.drift.evaluate` asks before it queries a value's drift.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from evaljobs.db.source import JobSource
from evaljobs.errors import EvaljobsError
from evaljobs.ops.incremental.parts import Part, PartPlan, fingerprint, on_grid, part_key, parts_between, query_ranges
from evaljobs.ops.incremental.queries import drift_counts
from evaljobs.ops.incremental.stored import DRIFT_KIND, REFERENCE_KIND, save_parts
from evaljobs.windows import Window

if TYPE_CHECKING:
    from evaljobs.ops.store import ResultsStore, Summary


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
        save_parts(self.store, job.name, REFERENCE_KIND,
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
            save_parts(self.store, job.name, REFERENCE_KIND, [(key, current, found.to_payload())], [], "",
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
                fresh = drift_counts(source, params, expression, numbers)
            except EvaljobsError:
                return None  # the full query reports what is wrong with the value
            if fresh is None:
                return None  # too many categories for parts: the full query refuses the value
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
        save_parts(self.store, source.job.name, DRIFT_KIND, written, [], "", self.window, self.moment,
                   keep=2 * self.window.length)
        return out
