"""SQL sources for drift: per-bin, per-category and cumulative-count summaries of one value.

Every query here is a named file of ``sql/`` assembled from two fragments: the current rows
(the window's predictions, or their labels) and the reference rows (the model's predictions
in a time range, their labels, or a reference table). Only summaries come back: at most a
few rows per bin or category and version, never a feature column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from evaljobs.db import sqlfiles
from evaljobs.drift import binned
from evaljobs.db.dialects import Dialect
from evaljobs.db.engine import connection
from evaljobs.db.source import JobSource, UnreadableTable, optional_float
from evaljobs.windows import Window

#: The fragments a drift query is assembled from, by what they read.
CURRENT_FRAGMENTS = {"predictions": "drift_current_predictions", "labels": "drift_current_labels"}
REFERENCE_FRAGMENTS = {
    "predictions": "drift_reference_predictions",
    "labels": "drift_reference_labels",
    "table": "drift_reference_table",
}


#: The queries of sql/fragments/fine_bins.sql (their own planner settings, Dialect.fine_bins_settings).
FINE_BINS_QUERIES = frozenset({"drift_numeric_binned", "drift_numeric_binned_current"})


class DriftInputError(Exception):
    """The data of one drift value cannot be compared (text in a numeric column, say)."""


@dataclass(frozen=True)
class ReferenceRows:
    """Where the reference rows are: the model's predictions in a range (optionally of one
    version), or a table; plus the bound values the fragment needs."""

    source: str  # "predictions" or "table"
    start: Any = None
    end: Any = None
    version: str | None = None
    table: str | None = None
    #: A version left out of the window's rows: the reference version of a champion comparison
    #: (``kind: version``), which gets no drift of its own, so its rows are summarised once (as
    #: the reference) instead of twice.
    excluded_version: str | None = None

    @property
    def window_version(self) -> str | None:
        """The window's version that is the reference (``kind: version``), else None: its rows
        are the window's rows of that version, so the binned and categorical summaries read
        them with the window in one scan and take the reference from that version's groups."""
        return self.excluded_version if self.source == "predictions" else None


@dataclass
class StoredReference:
    """A numeric ``baseline`` or ``table`` reference's stored fine bins (None: none that still
    hold) and how to store freshly read ones (:class:`evaljobs.ops.incremental.drift.DriftParts`)."""

    bins: "binned.ReferenceBins | None"
    save: Callable[["binned.ReferenceBins"], None]


@dataclass(frozen=True)
class DriftValue:
    """One compared value: a feature column, or a model output (predicted label, score, label)."""

    name: str
    kind: str  # "numeric" or "categorical"
    column: str | None  # the predictions column (None for the label, which comes from the labels)
    reference_column: str | None  # the reference table's column (table references only)

    @property
    def is_label(self) -> bool:
        return self.column is None


@dataclass(frozen=True)
class NumericBin:
    """One quantile bin with values in it: its upper edge (None for the open last bin) and both counts."""

    upper_edge: float | None
    reference_count: int
    current_count: int


@dataclass(frozen=True)
class NumericVersion:
    """A version's numeric summary: bins, the exact ECDF gap and area, value and NULL counts,
    and how many of the values are NaN or infinite (which make the rest meaningless)."""

    bins: tuple[NumericBin, ...]
    max_gap: int
    area: float
    current_values: int
    current_nulls: int
    current_non_finite: int = 0
    #: "exact" (every distinct value seen) or "binned" (fine histograms, evaljobs.drift.binned),
    #: with the largest possible error of the KS statistic and of the area (n * m * distance).
    mode: str = "exact"
    ks_error: float = 0.0
    area_error: float = 0.0


@dataclass(frozen=True)
class NumericReference:
    values: int
    nulls: int
    distinct: int
    minimum: float | None
    mean: float | None
    sum_squares: float | None
    non_finite: int = 0

    @property
    def rows(self) -> int:
        return self.values + self.nulls


@dataclass(frozen=True)
class NumericSummaries:
    reference: NumericReference
    versions: dict[str, NumericVersion]


@dataclass(frozen=True)
class CategoricalSummaries:
    """Category counts (NULLs apart) of the reference and of each version."""

    reference: dict[str, int]
    reference_nulls: int
    versions: dict[str, dict[str, int]]
    version_nulls: dict[str, int]
    distinct_values: int
    truncated: bool

    @property
    def reference_rows(self) -> int:
        return sum(self.reference.values()) + self.reference_nulls


@dataclass
class DriftSource:
    """The drift queries of one job, on the job source's engine and table mapping."""

    source: JobSource
    _columns: dict[str, dict[str, tuple[str, bool | None]]] = field(default_factory=dict, repr=False)

    @property
    def dialect(self) -> str:
        return self.source.engine.dialect.name

    @property
    def spec(self) -> Dialect:
        return self.source.spec

    def columns(self, table: str) -> dict[str, tuple[str, bool | None]] | None:
        """``lower name -> (actual name, is numeric)`` of a table or view; None when it cannot be read."""
        if table not in self._columns:
            try:
                self._columns[table] = self.source.layout(table)
            except UnreadableTable:
                return None
        return self._columns[table]

    # ---- assembling the queries -----------------------------------------------------------
    def _expression(self, alias: str, column: str, kind: str, cast: bool) -> str:
        quoted = f"{alias}.{self.source.quote(column)}"
        if not cast:
            return quoted
        return f"CAST({quoted} AS {self.spec.float_type if kind == 'numeric' else self.spec.text_type})"

    def _render(self, name: str, value: DriftValue, reference: ReferenceRows, cast: bool = True,
                in_window: bool = False) -> str:
        """``in_window``: the reference is read as a version of the window (no reference rows of
        its own, ``sql/drift_reference_in_window.sql``; see :meth:`ReferenceRows.window_version`)."""
        ids = dict(self.source.identifiers())
        if value.column is not None:
            ids["current_value"] = self._expression("p", value.column, value.kind, cast)
        # A label is class text; a regression job compares it as a number (ranked as text first).
        ids["label_value"] = f"CAST(label AS {self.spec.float_type})" if value.kind == "numeric" and cast else "label"
        if reference.source == "table":
            ids["reference_table"] = self.source.quote(reference.table or "")
            ids["reference_value"] = self._expression("r", value.reference_column or "", value.kind, cast)
            reference_fragment = REFERENCE_FRAGMENTS["table"]
        else:
            if value.column is not None:
                ids["reference_value"] = ids["current_value"]
            reference_fragment = REFERENCE_FRAGMENTS["labels" if value.is_label else "predictions"]
        # The fine bins' sample keys (sql/fragments/fine_bins.sql): for the window's rows alone, the version.
        ids["sample_columns"], ids["sample_keys"] = "is_reference, model_version", "is_reference, model_version"
        if in_window:
            ids["reference_type"] = self.spec.float_type if value.kind == "numeric" else self.spec.text_type
            reference_fragment = "drift_reference_in_window"
        if in_window or name == "drift_numeric_binned_current":
            ids["sample_columns"], ids["sample_keys"] = "0 AS is_reference, model_version", "model_version"
        # The fragments are rendered first and go into the query's {current_rows}/{reference_rows}
        # slots as finished SQL (str.format does not look into the values it inserts).
        dialect = self.source.dialect
        ids["current_rows"] = sqlfiles.render(CURRENT_FRAGMENTS["labels" if value.is_label else "predictions"], ids,
                                              dialect=dialect)
        ids["reference_rows"] = sqlfiles.render(reference_fragment, ids, dialect=dialect)
        return sqlfiles.render(name, ids, dialect=dialect)

    def _params(self, window: Window, reference: ReferenceRows, in_window: bool = False) -> dict[str, Any]:
        # Read in the window, the reference version's rows are wanted among the window's.
        excluded = None if in_window else reference.excluded_version
        params = self.source.window_params(window) | {"excluded_version": excluded}
        if reference.source == "predictions":
            params |= {
                "reference_start": self.source.bind_time(reference.start),
                "reference_end": self.source.bind_time(reference.end),
                "reference_version": reference.version,
            }
        return params

    def _run(self, name: str, value: DriftValue, reference: ReferenceRows, params: dict[str, Any],
             cast: bool = True, consume: Callable[[Iterable[sa.Row]], Any] = list, in_window: bool = False) -> Any:
        """Run a drift query; ``consume`` reads its rows while the result is open (the fine
        histograms are read row by row instead of as a list of thousands of Row objects)."""
        statement = sa.text(self._render(name, value, reference, cast, in_window))
        job = self.source.job.name
        with connection(self.source.engine, f"job {job!r}: drift query {name} for {value.name!r}") as conn:
            settings = self.spec.drift_settings
            if name in FINE_BINS_QUERIES and self.spec.fine_bins_settings is not None:
                settings = self.spec.fine_bins_settings
            for setting in settings:  # for this transaction only (see dialects.py)
                conn.execute(sa.text(setting))
            try:
                return consume(conn.execute(statement, params))
            except DBAPIError as exc:
                if not self.spec.input_error(exc):
                    raise
                # Bad data or a type the cast refuses: this value's problem, not the whole job's.
                raise DriftInputError(self.spec.error_text(exc.orig)) from None

    # ---- the summaries ------------------------------------------------------------------
    def non_numeric(self, value: DriftValue, window: Window, reference: ReferenceRows,
                    window_only: bool = False) -> tuple[int, str | None]:
        """How many values of a numeric drift value are not numbers, and one of them (engines that
        keep text in numeric columns, SQLite; the others refuse the cast in the summary query)."""
        if not self.spec.text_in_numeric_columns:
            return 0, None
        # sql/sqlite/drift_non_numeric.sql; with a stored reference (its values were numbers when
        # it was stored, and its rows have not changed since), the window's alone.
        name = "drift_non_numeric_current" if window_only else "drift_non_numeric"
        row = self._run(name, value, reference, self._params(window, reference), cast=False)[0]
        return int(row.non_numeric), row.example

    def numeric(self, value: DriftValue, window: Window, reference: ReferenceRows, bins: int,
                exact_max_values: int = 0, max_error: float = 1.0,
                stored: "StoredReference | None" = None) -> NumericSummaries:
        """Numeric summaries: from fine histograms (one pass, ``sql/drift_numeric_binned.sql``,
        around :meth:`center`) when the compared values are more than ``exact_max_values`` and
        the error bounds of the KS statistic and of the normalised Wasserstein distance are at
        most ``max_error``; else exact (``sql/drift_numeric.sql``, a sort of every distinct value).
        A histogram whose every bin holds one distinct value gives the exact numbers too.
        A version reference is binned with the window, in the same scan, as one of its versions.

        ``stored`` (a ``baseline`` or ``table`` reference under incremental windows): its fine
        bins, when they still hold, replace the reference's centre query and its share of the
        one-pass query (the window alone is binned, ``sql/drift_numeric_binned_current.sql``, on
        the same edges); otherwise the reference's bins read here are handed to it to store.
        Every decision below then sees the same numbers either way. The exact mode sorts the
        reference with the window, so it reads the reference again whenever it is chosen."""
        params = self._params(window, reference)
        kept = stored.bins if stored is not None else None
        if kept is not None:
            bins_params = binned.query_params(kept.center)
            reference_histogram = kept.histogram
            _, histograms = self._run(
                "drift_numeric_binned_current", value, reference, params | bins_params,
                consume=lambda rows: binned.histograms(rows, bins_params["center"]))
        else:
            center = self.center(value, reference, params)
            bins_params = binned.query_params(center)
            in_window = reference.window_version is not None
            reference_histogram, histograms = self._run(
                "drift_numeric_binned", value, reference, self._params(window, reference, in_window) | bins_params,
                consume=lambda rows: binned.histograms(rows, bins_params["center"]), in_window=in_window)
            if in_window:
                # The reference version's groups are the reference; a NULL version is no
                # version of the window (the reference's exclusion left it out before).
                reference_histogram = histograms.pop(reference.window_version,  # type: ignore[arg-type]
                                                     binned.Histogram(center=bins_params["center"]))
                histograms.pop(None, None)  # type: ignore[call-overload]
            if stored is not None:
                stored.save(binned.ReferenceBins(center, reference_histogram))
        values = reference_histogram.values + sum(h.values for h in histograms.values())
        non_finite = reference_histogram.non_finite + sum(h.non_finite for h in histograms.values())
        if non_finite == 0 and values <= exact_max_values:
            return self.numeric_exact(value, window, reference, bins)
        if any(binned.too_large(h) for h in (reference_histogram, *histograms.values())):
            return self.numeric_exact(value, window, reference, bins)
        moments = binned.reference_moments(reference_histogram)
        summary_of_reference = NumericReference(
            values=moments.values, nulls=reference_histogram.nulls, distinct=moments.distinct,
            minimum=moments.minimum, mean=moments.mean, sum_squares=moments.sum_squares,
            non_finite=reference_histogram.non_finite)
        versions = {}
        for version, histogram in histograms.items():
            compared = binned.compare(reference_histogram, histogram, bins)
            if non_finite == 0 and max(compared.ks_error, binned.normalised_area_error(
                    compared, moments, histogram.values)) > max_error:
                return self.numeric_exact(value, window, reference, bins)
            versions[version] = NumericVersion(
                bins=tuple(NumericBin(edge, r, c) for edge, r, c in compared.quantile_bins),
                max_gap=compared.max_gap, area=compared.area, current_values=histogram.values,
                current_nulls=histogram.nulls, current_non_finite=histogram.non_finite,
                mode="exact" if compared.exact else "binned", ks_error=compared.ks_error,
                area_error=compared.area_error)
        return NumericSummaries(summary_of_reference, versions)

    def center(self, value: DriftValue, reference: ReferenceRows, params: dict[str, Any]) -> float | None:
        """The centre of the fine bins (None: no finite reference value seen): for the model's
        own predictions, the median of a deterministic sample found through the (model,
        predicted_at) index (``sql/drift_numeric_center_sample.sql``); for a label or a table
        reference, the reference's mean (``sql/drift_numeric_center.sql``, a pass over it)."""
        if reference.source == "predictions" and not value.is_label:
            rows = self._run("drift_numeric_center_sample", value, reference,
                             params | {"sample_size": binned.CENTER_SAMPLE})
        else:
            rows = self._run("drift_numeric_center", value, reference, params)
        found = rows[0].center if rows else None
        return None if found is None else float(found)

    def numeric_exact(self, value: DriftValue, window: Window, reference: ReferenceRows, bins: int) -> NumericSummaries:
        """Quantile-bin counts, exact KS gap and Wasserstein area per version (``sql/drift_numeric.sql``)."""
        rows = self._run("drift_numeric", value, reference, self._params(window, reference) | {"bins": bins})
        reference_summary = NumericReference(0, 0, 0, None, None, None)
        by_version: dict[str, list[sa.Row]] = {}
        for row in rows:
            reference_summary = NumericReference(
                values=int(row.reference_values), nulls=int(row.reference_nulls),
                distinct=int(row.reference_distinct), minimum=optional_float(row.reference_min),
                mean=optional_float(row.reference_mean), sum_squares=optional_float(row.reference_sum_squares),
                non_finite=int(row.reference_non_finite),
            )
            by_version.setdefault(row.model_version, []).append(row)
        versions = {}
        for version, version_rows in by_version.items():
            ends = sorted((r for r in version_rows if r.bin is not None), key=lambda r: int(r.bin))
            bins_of_version = []
            reference_before = current_before = 0
            for end in ends:
                # Cumulative counts at each bin's end: a bin's counts are the differences. A
                # bin's upper edge is its largest value (a reference quantile); the last is open.
                reference_at, current_at = int(end.reference_at_or_below), int(end.current_at_or_below)
                bins_of_version.append(NumericBin(
                    None if int(end.bin) == bins - 1 else float(end.largest_value),
                    reference_at - reference_before, current_at - current_before))
                reference_before, current_before = reference_at, current_at
            last = ends[-1] if ends else None
            versions[version] = NumericVersion(
                bins=tuple(bins_of_version),
                max_gap=int(last.max_gap) if last is not None and last.max_gap is not None else 0,
                area=float(last.area) if last is not None and last.area is not None else 0.0,
                current_values=int(version_rows[0].current_values),
                current_nulls=int(version_rows[0].current_nulls),
                current_non_finite=int(version_rows[0].current_non_finite),
            )
        return NumericSummaries(reference_summary, versions)

    def categorical(self, value: DriftValue, window: Window, reference: ReferenceRows,
                    max_categories: int, versions: int) -> CategoricalSummaries:
        """Category counts of the reference and each version (``sql/drift_categorical.sql``); a
        version reference's are its version's counts in the window, read in the same scan."""
        # Room for every category in the reference and each version, plus one row to notice more.
        limit = (max_categories + 1) * (versions + 1) + 1
        in_window = reference.window_version is not None
        rows = self._run("drift_categorical", value, reference,
                         self._params(window, reference, in_window) | {"row_limit": limit}, in_window=in_window)
        reference_counts: dict[str, int] = {}
        reference_nulls = 0
        current: dict[str, dict[str, int]] = {}
        nulls: dict[str, int] = {}
        distinct = 0
        for row in rows:
            distinct = int(row.distinct_values)
            if in_window and row.model_version is None:
                continue  # no version of the window (the reference's exclusion left it out before)
            if row.is_reference or (in_window and row.model_version == reference.window_version):
                if row.value is None:
                    reference_nulls = int(row.n)
                else:
                    reference_counts[row.value] = int(row.n)
            else:
                current.setdefault(row.model_version, {})
                nulls.setdefault(row.model_version, 0)
                if row.value is None:
                    nulls[row.model_version] = int(row.n)
                else:
                    current[row.model_version][row.value] = int(row.n)
        return CategoricalSummaries(reference_counts, reference_nulls, current, nulls, distinct,
                                    truncated=len(rows) >= limit)

__all__ = [
    "CategoricalSummaries",
    "DriftInputError",
    "DriftSource",
    "DriftValue",
    "NumericBin",
    "NumericReference",
    "NumericSummaries",
    "NumericVersion",
    "ReferenceRows",
    "StoredReference",
]
