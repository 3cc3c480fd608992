"""A job's source: its mapped tables and columns, checked, and the aggregate queries of ``sql/``.

Only aggregates cross this boundary (confusion cells, per-score counts, totals): no
function here returns prediction rows. Every query filters by model and time window and
binds its values; table and column names come from the job's mapping, quoted for the dialect.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from evaljobs.config import Job
from evaljobs.db import sqlfiles
from evaljobs.db.dialects import Dialect, dialect_of, is_numeric_column
from evaljobs.db.engine import connection, describe_engine, first_line, wait_hint
from evaljobs.errors import SourceError
from evaljobs.quality.metrics import LOG_LOSS_EPS
from evaljobs.windows import Window

_SQLITE_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$")

# Columns every job needs, and the optional ones it uses when present.
_PREDICTION_COLUMNS = ("prediction_id", "model_name", "model_version", "predicted_at", "predicted_label")
_OPTIONAL_PREDICTION_COLUMNS = ("score", "latency_seconds", "predicted_value")
#: Optional number columns read leniently: a text value is counted and left out (non_numeric_values.sql).
_NUMBERS_CHECKED = ("score", "latency_seconds")
_LABEL_COLUMNS = ("label_prediction_id", "label", "labeled_at")


@dataclass(frozen=True)
class ColumnType:
    """One column of a table's layout: its name, the driver's type code (a PostgreSQL OID, a
    type name on DuckDB and PyHive, None on SQLite) and SQLite's declared type (else None)."""

    name: str
    type_code: Any
    declared: str | None = None


class UnreadableTable(Exception):
    """A mapped table or view cannot be read (``reason``: the driver's one line)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ConfusionCell:
    """One row of ``confusion_counts.sql``: a (version, actual, predicted) cell with score sums."""

    model_version: str
    label: str | None
    predicted_label: str
    predictions: int
    scored: int
    sum_log_score: float | None
    sum_log_one_minus_score: float | None
    sum_score_squared: float | None
    sum_one_minus_score_squared: float | None
    min_score: float | None
    max_score: float | None


@dataclass(frozen=True)
class RankCounts:
    """One row of ``roc_auc.sql``: positives, negatives and twice the Mann-Whitney U."""

    model_version: str
    positives: int
    negatives: int
    twice_u: int


@dataclass
class JobSource:
    """The aggregate queries of one job, against one engine."""

    engine: Engine
    job: Job
    _identifiers: dict[str, str] | None = field(default=None, repr=False)
    available_optional: frozenset[str] = frozenset()
    #: Optional numeric columns (score, latency_seconds) that may hold text: the column type is
    #: not a number, or the engine does not enforce it (SQLite). They are read with the
    #: dialect's number_or_null, and their non-numbers counted (:meth:`non_numeric_values`).
    text_capable: frozenset[str] = frozenset()
    schema_checked: bool = False
    #: The labels table declares one row per prediction id (see :meth:`_labels_unique`).
    labels_unique: bool = False
    #: The predictions table declares one row per (prediction_id, model_version) (:meth:`_predictions_unique`).
    predictions_unique: bool = False

    # ---- schema checks -------------------------------------------------------------------
    def check_schema(self) -> None:
        """Verify that the mapped tables and columns exist, before any query runs.

        A missing required (or explicitly configured optional) column is a SourceError that
        names the job, the table, the column and the setting to change.
        """
        columns = self.job.columns
        prediction_layout = self._layout_of(self.job.tables.predictions)
        found_predictions = set(prediction_layout)
        found_labels = self._columns_of(self.job.tables.labels)
        available = set()
        for key in _PREDICTION_COLUMNS + _OPTIONAL_PREDICTION_COLUMNS:
            name = getattr(columns, key)
            if name is None:
                continue
            if name.lower() in found_predictions:
                available.add(key)
            elif key in _PREDICTION_COLUMNS or columns.is_explicit(key):
                raise self._missing(self.job.tables.predictions, key, name, found_predictions)
        for key in _LABEL_COLUMNS:
            name = getattr(columns, key)
            if name.lower() not in found_labels:
                raise self._missing(self.job.tables.labels, key, name, found_labels)
        for name in self.job.segments:
            if name.lower() not in found_predictions:
                raise SourceError(
                    f"job {self.job.name!r}: segment column {name!r} not found in {self.job.tables.predictions!r} "
                    f"(has: {', '.join(sorted(found_predictions))})",
                    "fix the name in segments, or add the column to the predictions table")
        for label, name in (columns.class_scores or {}).items():
            if name.lower() not in found_predictions:
                raise self._missing(self.job.tables.predictions, f"class_scores.{label}", name, found_predictions)
        self.available_optional = frozenset(available & set(_OPTIONAL_PREDICTION_COLUMNS))
        self.labels_unique = self._labels_unique()
        self.predictions_unique = self._predictions_unique()
        self.text_capable = frozenset(
            key for key in self.available_optional & set(_NUMBERS_CHECKED)
            if self.spec.text_in_numeric_columns or not prediction_layout[getattr(columns, key).lower()][1])
        self._identifiers = None
        if self.spec.timestamps_as_text:
            self._check_text_timestamps()
        self.schema_checked = True

    def _labels_unique(self) -> bool:
        """True when the database guarantees at most one labels row per prediction id: a primary
        key, unique constraint or unique index on exactly the label's prediction-id column.

        Only a declared guarantee counts (a view, or a table that merely has no duplicates
        today, is ranked): with it the latest-label ranking is skipped, which is exact because
        each prediction then joins at most one label.
        """
        return self._declares_unique(self.job.tables.labels, [self.job.columns.label_prediction_id])

    def _predictions_unique(self) -> bool:
        """True when the predictions table declares one row per (prediction_id, model_version)
        (the reference schema's primary key), or per prediction_id: then no prediction has rows
        that disagree, and :meth:`ignored_rows` need not look for them."""
        columns = self.job.columns
        return self._declares_unique(self.job.tables.predictions, [columns.prediction_id, columns.model_version])

    def _declares_unique(self, table: str, columns: list[str]) -> bool:
        """Whether ``table`` has a primary key, unique constraint or unique index whose columns
        are some of ``columns`` (so rows are unique on ``columns``)."""
        schema, _, name = table.rpartition(".")
        wanted = {c.lower() for c in columns}

        def unique(key: list[str]) -> bool:
            names = {str(c).strip().strip('"').lower() for c in key if c is not None and str(c).strip()}
            return bool(names) and names <= wanted

        with connection(self.engine, f"job {self.job.name!r}: reading the keys of {table!r}") as conn:
            if self.spec.unique_keys_query:
                found = conn.execute(sa.text(sqlfiles.render("unique_keys", {}, dialect=self.dialect)),
                                     {"table_name": name, "schema_name": schema or None}).scalars()
                return any(unique(text.strip("[]").split(",")) for text in found)
            inspector = sa.inspect(conn)
            keys: list[list[str]] = []
            for read in (
                lambda: [inspector.get_pk_constraint(name, schema=schema or None).get("constrained_columns") or []],
                lambda: [c["column_names"] for c in inspector.get_unique_constraints(name, schema=schema or None)],
                lambda: [i["column_names"] for i in inspector.get_indexes(name, schema=schema or None)
                         if i.get("unique")],
            ):
                try:
                    keys += read()
                except Exception:  # noqa: BLE001 - a capability probe; without a key we look or rank
                    # A view, or an engine whose dialect cannot list keys: as without a key.
                    continue
        return any(unique(key) for key in keys)

    def _check_text_timestamps(self) -> None:
        [row] = self.query("time_extremes", {"model": self.job.model})  # sql/sqlite/time_extremes.sql
        for key, value in row._mapping.items():
            if value is None or (isinstance(value, str) and _SQLITE_TIMESTAMP.match(value)):
                continue
            raise self._timestamp_form_error("predicted" in key, f"holds {value!r}")

    def check_window_timestamps(self, window: Window) -> None:
        """On engines that compare timestamps as text (SQLite), refuse a window any of whose rows
        holds a timestamp in another form (an offset, a 'T'): :meth:`check_schema` sees only the
        tables' extremes, and such a row in the middle of a table would land in the wrong window.
        One query of two index-only range scans (``sql/sqlite/window_timestamp_forms.sql``)."""
        if not self.spec.timestamps_as_text:
            return
        params = self.window_params(window) | {"arrived_from": self.bind_time(window.labels_as_of - window.length)}
        [row] = self.query("window_timestamp_forms", params)
        for prefix in ("predicted_at", "labeled_at"):
            count = int(getattr(row, f"{prefix}_count") or 0)
            if count:
                example = getattr(row, f"{prefix}_example")
                raise self._timestamp_form_error(
                    prefix == "predicted_at", f"holds {count} value(s) in the window like {example!r}")

    def _timestamp_form_error(self, predictions: bool, what: str) -> SourceError:
        table, column = ("predictions", "predicted_at") if predictions else ("labels", "labeled_at")
        return SourceError(
            f"job {self.job.name!r}: {getattr(self.job.tables, table)}.{getattr(self.job.columns, column)} "
            f"{what}, but on SQLite evaljobs compares timestamps as UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]'",
            "store them in that form, or map a view that converts them with datetime(...)",
        )

    def ensure_schema(self) -> None:
        """Check the schema once per source (see :meth:`check_schema`)."""
        if not self.schema_checked:
            self.check_schema()

    def _columns_of(self, table: str) -> set[str]:
        """Column names (lower-cased) of a table or view; a SourceError when it cannot be read."""
        return set(self._layout_of(table))

    def _layout_of(self, table: str) -> dict[str, tuple[str, bool | None]]:
        """:meth:`layout`, with a SourceError when the table cannot be read."""
        try:
            return self.layout(table)
        except UnreadableTable as exc:
            raise SourceError(
                f"job {self.job.name!r}: cannot read table or view {table!r} in {describe_engine(self.engine)} "
                f"({exc.reason})",
                wait_hint(exc.reason) or "create it (see sql/schema.sql) or set tables: in the job",
            ) from None

    def layout(self, table: str) -> dict[str, tuple[str, bool | None]]:
        """``lower name -> (name, is numeric)`` of a table or view (see :meth:`column_types`).
        Raises :class:`UnreadableTable` when the table cannot be read (it does not exist, say)."""
        return {key: (column.name, is_numeric_column(self.dialect, column.type_code, column.declared))
                for key, column in self.column_types(table).items()}

    def column_types(self, table: str) -> dict[str, "ColumnType"]:
        """``lower name -> ColumnType`` of a table or view, from an empty SELECT and the cursor's
        description (plus SQLite's declared types, as sqlite3 describes none): no dialect
        reflection, which a driver may not implement (DuckDB's reads a PostgreSQL catalog it
        lacks). Raises :class:`UnreadableTable` when the table cannot be read."""
        quoted = self.quote(table)
        with connection(self.engine, f"job {self.job.name!r}: reading the layout of {table!r}") as conn:
            try:
                result = conn.execute(sa.text(f"SELECT * FROM {quoted} WHERE 1 = 0"))
                description = result.cursor.description or ()
                result.close()
                declared: dict[str, str] = {}
                if self.spec.timestamps_as_text:  # SQLite: the declared types say what a column holds
                    schema, _, name = table.rpartition(".")
                    plain = self.engine.dialect.identifier_preparer.quote  # exec_driver_sql: no text() escapes
                    pragma = f"PRAGMA {plain(schema) + '.' if schema else ''}table_info({plain(name)})"
                    declared = {row[1].lower(): row[2] or "" for row in conn.exec_driver_sql(pragma)}
            except DBAPIError as exc:
                conn.rollback()
                raise UnreadableTable(first_line(exc.orig, self.dialect)) from None
        # Drivers may qualify names ("p.x" on Spark); the column is the last part.
        out = {}
        for column in description:
            name = str(column[0]).rpartition(".")[2]
            out[name.lower()] = ColumnType(name, column[1], declared.get(str(column[0]).lower()))
        return out

    def _missing(self, table: str, key: str, name: str, found: set[str]) -> SourceError:
        return SourceError(
            f"job {self.job.name!r}: column {name!r} not found in {table!r} (has: {', '.join(sorted(found))})",
            f"set columns.{key} in the job to the right column name",
        )

    # ---- query plumbing -----------------------------------------------------------------
    @property
    def dialect(self) -> str:
        """The SQLAlchemy dialect name of the engine (``sqlite``, ``postgresql``, ...)."""
        return self.engine.dialect.name

    @property
    def spec(self) -> Dialect:
        """What this engine spells or does differently (:mod:`evaljobs.db.dialects`)."""
        return dialect_of(self.dialect)

    def quote(self, name: str) -> str:
        """A table (optionally ``schema.table``) or column name, quoted for this dialect and for
        :func:`sqlalchemy.text`, which every query goes through (see :func:`quote_for_text`)."""
        return quote_for_text(self.engine, name)

    def identifiers(self) -> dict[str, str]:
        """Slot values for the SQL templates: quoted names and column expressions."""
        if self._identifiers is None:
            cols = self.job.columns
            ids = {key: self.quote(getattr(cols, key)) for key in _PREDICTION_COLUMNS + _LABEL_COLUMNS}
            ids["predicted_label_text"] = self.spec.class_text_sql(f"p.{ids['predicted_label']}")
            ids["label_text"] = self.spec.class_text_sql(f"l.{ids['label']}")
            ids["predictions"] = self.quote(self.job.tables.predictions)
            ids["labels"] = self.quote(self.job.tables.labels)
            if self.labels_unique:
                ids["latest_label_rank"] = sqlfiles.render("fragments/latest_label_unique", ids,
                                                           dialect=self.dialect)
                # The first label is the only one: the label-delay rows need no GROUP BY either.
                ids["label_delay_rows"] = sqlfiles.render("fragments/label_delay_rows_unique", ids,
                                                          dialect=self.dialect)
                ids["delay_rows_barrier"] = sqlfiles.render("fragments/delay_rows_barrier_unique", ids,
                                                            dialect=self.dialect)
                ids["first_labeled_at"] = sqlfiles.render("fragments/first_label_time_unique", ids,
                                                          dialect=self.dialect)
                ids["delay_rows_materialization"] = sqlfiles.render("fragments/delay_rows_materialization_unique",
                                                                    ids, dialect=self.dialect)
            for key in _OPTIONAL_PREDICTION_COLUMNS:
                column = f"p.{self.quote(getattr(cols, key))}" if key in self.available_optional else None
                if column is None:
                    ids[f"{key}_expr"] = ids[f"{key}_raw"] = f"CAST(NULL AS {self.spec.float_type})"
                elif key in self.text_capable:
                    ids[f"{key}_expr"], ids[f"{key}_raw"] = self.spec.number_sql(column), column
                else:
                    ids[f"{key}_expr"] = ids[f"{key}_raw"] = f"CAST({column} AS {self.spec.float_type})"
            self._identifiers = ids
        return self._identifiers

    def bind_time(self, moment: datetime) -> Any:
        return self.spec.bind_time(moment)

    def window_params(self, window: Window) -> dict[str, Any]:
        return {
            "model": self.job.model,
            "window_start": self.bind_time(window.start),
            "window_end": self.bind_time(window.end),
            "labels_as_of": self.bind_time(window.labels_as_of),
        }

    def query(self, name: str, params: dict[str, Any], slots: dict[str, str] | None = None) -> list[sa.Row]:
        """Run ``sql/<name>.sql`` (extra generated ``slots`` filled in) and return its small result."""
        statement = sa.text(sqlfiles.render(name, self.identifiers(), slots, self.dialect))
        with connection(self.engine, f"job {self.job.name!r}: query {name}") as conn:
            for setting in self.spec.query_settings:  # for this transaction only (see dialects.py)
                conn.execute(sa.text(setting))
            return list(conn.execute(statement, params))

    # ---- the aggregates -----------------------------------------------------------------
    def non_numeric_values(self, window: Window) -> dict[str, tuple[int, str | None]]:
        """``column key -> (count, an example)`` of score and latency values in the window that
        are not numbers (text such as 'n/a'); they are read as NULL, i.e. left out. Asked only
        of columns that can hold text (:attr:`text_capable`)."""
        if not self.text_capable:
            return {}
        [row] = self.query("non_numeric_values", self.window_params(window))
        out = {}
        for key in sorted(self.text_capable):
            count = int(getattr(row, f"{key}_count") or 0)
            if count:
                out[key] = (count, getattr(row, f"{key}_example"))
        return out

    def ignored_rows(self, window: Window, compared_prediction: str) -> "IgnoredRows":
        """Rows of the window that a task reads but cannot use as they stand (``sql/ignored_rows.sql``):
        NULL labels that arrived in the window's length before ``labels_as_of``, and per version the
        prediction ids whose rows in the window predict different values (``compared_prediction``,
        an expression over ``p``, as the task compares predictions)."""
        params = self.window_params(window) | {"arrived_from": self.bind_time(window.labels_as_of - window.length)}
        out = IgnoredRows()
        # A declared key rules conflicts out; the predictions' GROUP BY (about a third of the
        # window query's time at 1M rows on PostgreSQL) is then left out.
        conflicts = "0 = 1" if self.predictions_unique else "1 = 1"
        for row in self.query("ignored_rows", params, {"compared_prediction": compared_prediction,
                                                      "look_for_conflicts": conflicts}):
            if row.row_kind == "null_labels":
                out.null_labels = int(row.found or 0)
            elif row.found:
                out.conflicts[row.model_version] = (int(row.found), row.example)
        return out

    def window_aggregates(self, window: Window, with_ranks: bool,
                          cell_counts: Sequence["CellCounts"] = ()) -> "WindowAggregates":
        """Confusion cells, rank sums (if ``with_ranks``), cumulative totals and orphan labels of
        one window, from the single statement ``sql/window_aggregates.sql``; ``cell_counts`` add
        further counts to each cell over the same join (the label delays', the latency histogram's),
        returned as :attr:`WindowAggregates.cell_rows` for their modules to add up per version."""
        params = self.window_params(window) | {
            "eps": LOG_LOSS_EPS,
            "arrived_from": self.bind_time(window.labels_as_of - window.length),
        }
        for counts in cell_counts:
            params |= counts.params
        if with_ranks:
            params["positive_label"] = self.job.positive_label or ""
        ranks = sqlfiles.render("score_ranks" if with_ranks else "score_ranks_skipped", self.identifiers(),
                                dialect=self.dialect)
        columns = [name for counts in cell_counts for name in counts.columns]
        slots = {"score_ranks": ranks,
                 "cell_counts": "".join(f",\n        {sql}" for counts in cell_counts for sql in counts.aggregates),
                 "cell_count_columns": "".join(f", {name}" for name in columns),
                 "cell_count_nulls": "".join(", NULL" for _ in columns)}
        if not with_ranks:
            # Score metrics are a binary job's (with a score): the others' cells need no score
            # sums, and two logarithms and two squares per labelled row were ~10% of the query.
            slots["score_expr"] = f"CAST(NULL AS {self.spec.float_type})"
        out = WindowAggregates()
        for row in self.query("window_aggregates", params, slots):
            if row.row_kind == "cell":
                out.cell_rows.append(row._mapping)
                if not row.predictions:  # a cell of the label-delay look-back alone
                    continue
                out.cells.append(ConfusionCell(
                    model_version=row.model_version,
                    label=row.label,
                    predicted_label=row.predicted_label,
                    predictions=int(row.predictions),
                    scored=int(row.scored or 0),
                    sum_log_score=optional_float(row.sum_log_score),
                    sum_log_one_minus_score=optional_float(row.sum_log_one_minus_score),
                    sum_score_squared=optional_float(row.sum_score_squared),
                    sum_one_minus_score_squared=optional_float(row.sum_one_minus_score_squared),
                    min_score=optional_float(row.min_score),
                    max_score=optional_float(row.max_score),
                ))
            elif row.row_kind == "ranks":
                out.ranks[row.model_version] = RankCounts(
                    row.model_version, int(row.positives), int(row.negatives), int(row.twice_u))
            elif row.row_kind == "total":
                out.totals[row.model_version] = int(row.predictions)
            elif row.row_kind == "orphans":
                out.orphan_labels = int(row.predictions)
        return out


@dataclass
class WindowAggregates:
    """What ``sql/window_aggregates.sql`` returns for one window, sorted by kind."""

    cells: list[ConfusionCell] = field(default_factory=list)
    ranks: dict[str, RankCounts] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    orphan_labels: int = 0
    #: Every cell row, with the columns of the :class:`CellCounts` asked for (a row may count the
    #: label-delay look-back alone: its ``predictions`` in the window are then 0).
    cell_rows: list[Mapping[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class CellCounts:
    """Counts that ``sql/window_aggregates.sql`` adds to each confusion cell, over the label-delay
    look-back's rows (``population_rows``: ``in_window``, ``predicted_at``, ``labeled_at``,
    ``delay_seconds``, ``latency_seconds``, ...): ``aggregates`` are SELECT-list items
    (``COUNT(...) AS name``; bound values only as parameters, in ``params``), ``columns`` their names."""

    params: dict[str, Any]
    aggregates: tuple[str, ...]
    columns: tuple[str, ...]


@dataclass
class IgnoredRows:
    """What ``sql/ignored_rows.sql`` counts: NULL label rows, and per version ``(prediction ids
    with rows that predict different values, an example id)``."""

    null_labels: int = 0
    conflicts: dict[str, tuple[int, str | None]] = field(default_factory=dict)


def quote_for_text(engine: Engine, name: str) -> str:
    """``name`` (``schema.table`` or a column) quoted for ``engine``, ready for :func:`sqlalchemy.text`.

    Legal names may hold what ``text()`` reads as syntax: ``sc :ore`` would be a bind parameter
    ``:ore`` (escaped here as ``\\:``), and a ``%`` that the dialect's quoting already doubled
    for a pyformat driver would be doubled again when ``text()`` compiles (undone here).
    """
    preparer = engine.dialect.identifier_preparer
    parts = []
    for part in name.split("."):
        quoted = preparer.quote(part)
        if getattr(preparer, "_double_percents", False):
            quoted = quoted.replace("%%", "%")
        parts.append(quoted.replace(":", "\\:"))
    return ".".join(parts)


def optional_float(value: Any) -> float | None:
    """A numeric result column as a float (drivers return Decimal, int or float), NULL as None."""
    return None if value is None else float(value)
