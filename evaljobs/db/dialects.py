"""What differs between SQL engines, in one table.

SQL templates are written once (``sql/``); what engines spell or do differently is an entry
of :data:`DIALECTS`, keyed by the SQLAlchemy dialect name (``engine.dialect.name``):

* the SQL slots every template may use -- ``{text_type}``, ``{float_type}``, ``{int_div}``
  (integer division of two non-negative BIGINTs), ``{materialized}`` (the hint that keeps a
  one-row CTE from being recomputed);
* how a class label becomes text (``1``, ``1.0`` and ``'1'`` must all read ``'1'``);
* how a UTC instant is bound, and statements run on every new connection (time zone);
* statements run before each drift query (planner settings);
* how the column layout is read (an empty ``SELECT``, never a dialect's reflection) and which
  driver type codes are numbers;
* which locks the results store takes, and whether it may live there at all;
* which driver errors are bad input (a cast the data refuses), and how an error's text reads.

Whole queries that an engine needs written differently are override files,
``sql/<dialect>/<name>.sql`` (see :mod:`evaljobs.db.sqlfiles`). A new engine is one entry here
plus the overrides it needs; an engine without an entry gets :data:`ANSI`.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.exc import DataError, DBAPIError, ProgrammingError

#: A driver's type name that means a number: ``DOUBLE``, ``UBIGINT``, ``DECIMAL(10,2)`` (DuckDB),
#: ``DOUBLE_TYPE``, ``INT_TYPE`` (PyHive); not ``INTERVAL`` or ``POINT``.
_NUMERIC_NAME = re.compile(r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?[0-9]*|DOUBLE|FLOAT[0-9]*|REAL|DECIMAL|NUMERIC|NUMBER)"
                           r"(?![A-Z])", re.IGNORECASE)
#: PostgreSQL type OIDs of numbers: int8, int2, int4, float4, float8, numeric.
_POSTGRES_NUMERIC_OIDS = frozenset({20, 21, 23, 700, 701, 1700})


def _numeric_by_name(type_code: Any) -> bool | None:
    """A type code that names its type (DuckDB, PyHive): numeric when the name says so."""
    if type_code is None:
        return None
    return bool(_NUMERIC_NAME.match(str(type_code).strip()))


def _numeric_postgres(type_code: Any) -> bool | None:
    return None if type_code is None else type_code in _POSTGRES_NUMERIC_OIDS


#: A driver's type name that means an instant: ``TIMESTAMP WITH TIME ZONE`` (DuckDB),
#: ``TIMESTAMP_TYPE`` (PyHive); not ``DATE`` or ``TIME``.
_TIMESTAMP_NAME = re.compile(r"^TIMESTAMP", re.IGNORECASE)
#: PostgreSQL type OIDs of instants: timestamp, timestamptz.
_POSTGRES_TIMESTAMP_OIDS = frozenset({1114, 1184})


def _timestamp_by_name(type_code: Any) -> bool | None:
    """A type code that names its type (DuckDB, PyHive): an instant when the name says so."""
    return None if type_code is None else bool(_TIMESTAMP_NAME.match(str(type_code).strip()))


def _timestamp_postgres(type_code: Any) -> bool | None:
    return None if type_code is None else type_code in _POSTGRES_TIMESTAMP_OIDS


def _type_name(type_code: Any) -> str:
    return "unknown" if type_code is None else str(type_code)


def _postgres_type_name(type_code: Any) -> str:
    """The name of a PostgreSQL type OID (``timestamptz``, ``varchar``) from psycopg's built-ins."""
    try:
        from psycopg.postgres import types
    except ImportError:  # another PostgreSQL driver: the OID is still a fact
        return f"oid {type_code}"
    info = types.get(type_code) if isinstance(type_code, int) else None
    return info.name if info is not None else f"oid {type_code}"


def _numeric_sqlite_declared(declared: str) -> bool:
    """SQLite's own affinity rules (section 3.1 of its datatype page), for a declared column type."""
    upper = declared.upper()
    if any(word in upper for word in ("DATE", "TIME", "BOOL")):
        return False  # NUMERIC affinity to SQLite, but not numbers to compare
    if "INT" in upper:
        return True
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT", "BLOB")) or not upper:
        return False
    return True  # REAL, FLOA, DOUB and NUMERIC affinity


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


_HIVE_MESSAGE = re.compile(r"errorMessage=(['\"])(.*?)\1(?:, |\))", re.DOTALL)


def _hive_error_text(error: BaseException) -> str:
    """PyHive puts the server's whole Thrift status in its exception; the message is in there."""
    text = str(error)
    match = _HIVE_MESSAGE.search(text)
    if match:
        text = match.group(2).encode().decode("unicode_escape", errors="replace")
    # Spark prefixes "Error running query: " and the exception class; the first line says it.
    text = re.sub(r"^(Error running query: )?(\[[\w.]+\] )?([\w.$]+(Exception|Error): )?", "", text.strip())
    return _first_line(Exception(text)) if text else type(error).__name__


def _hive_input_error(error: DBAPIError) -> bool:
    # Spark reports every failure as one OperationalError; its error class says what it was.
    return any(code in str(error.orig) for code in ("CAST_INVALID_INPUT", "DATATYPE_MISMATCH", "NUMERIC_VALUE_OUT_OF_RANGE"))


def _standard_input_error(error: DBAPIError) -> bool:
    # A cast the data refuses (PostgreSQL: invalid input syntax) or a type that cannot be compared.
    return isinstance(error, (DataError, ProgrammingError))


def _postgres_utc(url: URL) -> dict[str, Any]:
    # Compare timestamps in UTC whatever the server's or role's TimeZone says (keeping any
    # options the URL already carries, such as a search_path). A SET on connect would be
    # undone by the pool's first rollback; a startup option is not.
    given = url.query.get("options")
    given = " ".join(given) if isinstance(given, tuple) else given
    args = {"options": f"{given} -c timezone=UTC" if given else "-c timezone=UTC"}
    # A DBA finds evaljobs' sessions by name in pg_stat_activity (a statement's text there is cut
    # at 1024 bytes, before the tables it reads), unless the URL names them itself.
    if "application_name" not in url.query:
        args["application_name"] = "evaljobs"
    return args


@dataclass(frozen=True)
class Waits:
    """Bounds on database waits, in seconds (``timeouts:`` in the config)."""

    connect: float = 10.0
    statement: float = 1800.0


def _postgres_waits(url: URL, waits: Waits, args: dict[str, Any]) -> dict[str, Any]:
    # libpq's connect_timeout (whole seconds, at least 2); statement_timeout as a startup option,
    # which also bounds lock waits inside a statement and survives the pool's rollbacks.
    options = args.get("options") or ""
    options = f"{options} -c statement_timeout={int(waits.statement * 1000)}".strip()
    return {**args, "connect_timeout": max(2, math.ceil(waits.connect)), "options": options}


def _sqlite_waits(url: URL, waits: Waits, args: dict[str, Any]) -> dict[str, Any]:
    # SQLite's busy timeout: how long a statement waits for another process's write lock.
    return {**args, "timeout": waits.connect}


def _sqlite_math(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # SQLite has LN only when built with math functions; provide it when it is missing.
    try:
        dbapi_connection.execute("SELECT ln(1)")
    except sqlite3.OperationalError:
        dbapi_connection.create_function("ln", 1, math.log, deterministic=True)
    # SQLite has no VAR_POP; regression's R2 needs it (sql/regression_aggregates.sql).
    dbapi_connection.create_aggregate("var_pop", 1, _VarPop)


class _VarPop:
    """``VAR_POP`` for SQLite: Welford's one-pass algorithm, as stable as PostgreSQL's and
    DuckDB's own (a naive sum of squares loses every digit when the mean dwarfs the spread)."""

    def __init__(self) -> None:
        self.count, self.mean, self.squares = 0, 0.0, 0.0

    def step(self, value: float | None) -> None:
        if value is None:
            return
        x = float(value)
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self.squares += delta * (x - self.mean)

    def finalize(self) -> float | None:
        return self.squares / self.count if self.count else None


@dataclass(frozen=True)
class Dialect:
    """How one engine spells and does what differs (see the module docstring)."""

    name: str
    text_type: str = "VARCHAR"
    float_type: str = "DOUBLE PRECISION"
    #: Integer division of two non-negative BIGINTs (``/`` is fractional on DuckDB and Spark).
    int_div: str = "/"
    #: How a CTE that must be computed once is introduced (``AS`` where the hint is refused).
    materialized: str = "AS MATERIALIZED"
    #: SQL for a class label as text; ``{column}`` and the slots above are filled in.
    class_text: str = "CAST({column} AS {text_type})"
    #: Timestamps stored and compared as ISO text (SQLite); else bound as aware datetimes.
    timestamps_as_text: bool = False
    #: Driver arguments for every connection, from the URL (PostgreSQL's time zone option).
    connect_args: Callable[[URL], dict[str, Any]] | None = None
    #: Driver arguments bounding connects and statements (:class:`Waits`), added to connect_args;
    #: None: the engine has no such settings, and waits are as long as its driver's.
    wait_args: Callable[[URL, Waits, dict[str, Any]], dict[str, Any]] | None = None
    #: Whether a statement that runs longer than ``Waits.statement`` is interrupted from the
    #: client (SQLite's progress handler), for engines whose server has no statement timeout.
    interrupt_slow_statements: bool = False
    #: Called with each new DBAPI connection (SQLite's missing LN).
    on_connect: Callable[[Any, Any], None] | None = None
    #: Statements run on every new connection (the evaluation's time zone).
    connect_statements: tuple[str, ...] = ()
    #: Statements run in the transaction of each evaluation query (planner settings).
    query_settings: tuple[str, ...] = ()
    #: Statements run in the transaction of each drift query (planner settings).
    drift_settings: tuple[str, ...] = ()
    #: Instead of ``drift_settings``, for the fine-bin queries (sql/fragments/fine_bins.sql).
    fine_bins_settings: tuple[str, ...] | None = None
    #: The column layout's type codes: True for a number, False for not, None for unknown.
    numeric_type_code: Callable[[Any], bool | None] = _numeric_by_name
    #: The column layout's type codes: True for an instant (TIMESTAMP), False for not, None for
    #: unknown; ``evaljobs doctor`` refuses time columns that are not instants.
    timestamp_type_code: Callable[[Any], bool | None] = _timestamp_by_name
    #: A type code as a person reads it (``timestamptz``, ``TIMESTAMP_TYPE``).
    type_name: Callable[[Any], str] = _type_name
    #: A window scan and the label join use indexes (row stores), so ``evaljobs doctor`` checks
    #: them; column stores and Spark scan without them.
    uses_indexes: bool = False
    #: Server settings ``evaljobs doctor`` reports: name -> what it means for evaluations, in
    #: the order of the rows of ``sql/<dialect>/server_settings.sql`` (name, value); empty: none.
    server_settings: dict[str, str] = field(default_factory=dict)
    #: Text can sit in numeric columns (SQLite): numeric drift first counts such values.
    text_in_numeric_columns: bool = False
    #: SQL for ``{column}`` as a float, NULL where it holds no number (text such as 'n/a'),
    #: used for score and latency columns that may hold text; None: a plain CAST (which fails
    #: or, on SQLite, silently gives 0 -- hence the entries below).
    number_or_null: str | None = None
    #: How the results store serialises its migrations: "advisory" (a PostgreSQL advisory
    #: lock), "immediate" (SQLite's BEGIN IMMEDIATE) or "transaction" (the transaction alone).
    migration_lock: str = "transaction"
    #: How pushes of one job are serialised between processes: "advisory", "file" (a lock file
    #: beside a database file) or "none" (one process per database, e.g. an embedded DuckDB).
    push_lock: str = "none"
    #: The results store (claims, UPDATEs in transactions) may live in this database.
    results_store: bool = True
    #: Inserting many rows takes one statement per row (executemany on PyHive), so bulk loads
    #: (demo and test data) send multi-row ``VALUES`` lists with typed literals instead.
    values_inserts: bool = False
    #: ``ALTER TABLE ... ADD COLUMNS (a T, b T)`` in one statement (Spark) instead of one
    #: ``ADD COLUMN`` each.
    add_columns_together: bool = False
    #: Whether a failed query is the data's fault (a refused cast), reported per drift value.
    input_error: Callable[[DBAPIError], bool] = _standard_input_error
    #: The one line of a driver error that says what went wrong.
    error_text: Callable[[BaseException], str] = _first_line
    #: Declared unique keys of the labels table come from ``sql/<dialect>/unique_keys.sql``
    #: (DuckDB, whose SQLAlchemy inspector reads a PostgreSQL catalog it lacks), else from the
    #: SQLAlchemy inspector (a dialect that cannot list keys means "none declared").
    unique_keys_query: bool = False
    #: Extra words for the README's support matrix and error hints.
    notes: str = ""
    slots: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "slots", {
            "text_type": self.text_type, "float_type": self.float_type,
            "int_div": self.int_div, "materialized": self.materialized,
        })

    def class_text_sql(self, column: str) -> str:
        """SQL for the class label in ``column`` as text (see :func:`class_text`)."""
        return self.class_text.format(column=column, **self.slots)

    def number_sql(self, column: str) -> str:
        """SQL for ``column`` as a float that is NULL where the column holds no number."""
        if self.number_or_null is None:
            return f"CAST({column} AS {self.float_type})"
        return self.number_or_null.format(column=column, **self.slots)

    def bind_time(self, moment: datetime) -> Any:
        """A UTC instant as this engine compares it (see :func:`bind_time`)."""
        utc = moment.astimezone(timezone.utc)
        if self.timestamps_as_text:
            return utc.replace(tzinfo=None).isoformat(sep=" ")
        return utc


#: What an engine without its own entry gets: standard SQL spellings, no locks.
ANSI = Dialect("ansi")

DIALECTS: dict[str, Dialect] = {
    "sqlite": Dialect(
        "sqlite",
        # SQLite writes a float 1.0 as '1.0'; a whole-number REAL is written as an integer.
        class_text=("CASE WHEN typeof({column}) = 'real' AND {column} = CAST({column} AS INTEGER) "
                    "THEN CAST(CAST({column} AS INTEGER) AS VARCHAR) ELSE CAST({column} AS VARCHAR) END"),
        timestamps_as_text=True,
        on_connect=_sqlite_math,
        numeric_type_code=lambda _code: None,  # sqlite3 gives no types: the declared ones are read
        timestamp_type_code=lambda _code: None,  # timestamps are UTC text, checked by their values
        uses_indexes=True,
        text_in_numeric_columns=True,
        wait_args=_sqlite_waits,
        interrupt_slow_statements=True,
        # CAST('n/a' AS REAL) is a silent 0 on SQLite: only numbers, and text that spells one.
        number_or_null=("CASE WHEN typeof({column}) IN ('integer', 'real') THEN CAST({column} AS REAL) "
                        "WHEN typeof({column}) = 'text' AND trim({column}) <> '' "
                        "AND trim({column}) NOT GLOB '*[^0-9.eE+-]*' THEN CAST(trim({column}) AS REAL) END"),
        migration_lock="immediate",
        push_lock="file",
    ),
    "postgresql": Dialect(
        "postgresql",
        # The planner cannot know how many versions a window has (it assumes 200), so it
        # overestimates the reference x versions rows a hundredfold and spends seconds
        # JIT-compiling a plan that runs no faster. Only for the drift query's transaction.
        # work_mem: the planner expects about one group per value for the fine drift bins
        # (thousands in fact) and, at Debian's 4 MB, sorts half a million rows per worker
        # instead of hashing them (5.4 s against 2.9 s at 1M rows; the exact query's sort
        # spills less too). 64 MB per sort or hash node, for that transaction only.
        connect_args=_postgres_utc,
        wait_args=_postgres_waits,
        # A text column's value is cast only when it spells a number; a plain CAST would fail
        # the whole query on the first 'n/a'.
        number_or_null=("CASE WHEN CAST({column} AS TEXT) ~ '^\\s*[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?\\s*$' "
                        "THEN CAST(CAST({column} AS TEXT) AS DOUBLE PRECISION) END"),
        # hash_mem_multiplier (PostgreSQL 13+): at 10M rows the planner expects ~1M fine bins
        # (13,000 in fact), which at 64 MB x the default multiplier of 2 does not fit its hash
        # estimate, so it sorted 3.3M rows per worker on disk: 13.5 s, against 3.6 s hashed with
        # a multiplier of 4 (EXPLAIN ANALYZE, bench data, 10M rows; ~50 MB per worker used).
        drift_settings=("SET LOCAL jit = off", "SET LOCAL work_mem = '64MB'", "SET LOCAL hash_mem_multiplier = 4"),
        # The fine bins' logarithm, CASEs and five aggregates per row are the one drift statement
        # JIT pays for: at 10M rows (plan cost ~700,000, above the server's inline and optimise
        # thresholds) 3.3-3.9 s with it against 5.0-6.0 s without, alternated three times at load
        # 5-6, compiling included (~1 s per process). At 1M rows the plan costs ~84,000, under
        # jit_above_cost, so nothing is compiled. The server's own jit settings decide.
        fine_bins_settings=("SET LOCAL work_mem = '64MB'", "SET LOCAL hash_mem_multiplier = 4"),
        # Every evaluation query is a scan and a few aggregates over it, costed far above
        # jit_above_cost: compiling took 0.2-1 s per query (more at 10M rows, where the
        # optimisation and inlining thresholds are crossed too) and made none of them faster
        # (EXPLAIN ANALYZE on the bench data: the window query 0.96 s with JIT off, 1.36 s on).
        query_settings=("SET LOCAL jit = off",),
        numeric_type_code=_numeric_postgres,
        timestamp_type_code=_timestamp_postgres,
        type_name=_postgres_type_name,
        uses_indexes=True,
        server_settings={"work_mem": "drift queries set 64MB for their own transaction (hash instead of sort), "
                                     "the window join does not need more"},
        migration_lock="advisory",
        push_lock="advisory",
    ),
    "duckdb": Dialect(
        "duckdb",
        int_div="//",
        number_or_null="TRY_CAST({column} AS DOUBLE)",
        class_text=("CASE WHEN typeof({column}) IN ('DOUBLE', 'FLOAT') AND {column} = TRY_CAST({column} AS BIGINT) "
                    "THEN CAST(TRY_CAST({column} AS BIGINT) AS VARCHAR) ELSE CAST({column} AS VARCHAR) END"),
        connect_statements=("SET TimeZone = 'UTC'",),
        push_lock="file",
        unique_keys_query=True,
    ),
    # Apache Spark's Thrift Server (HiveServer2 protocol) through PyHive: hive://host:port/db.
    "hive": Dialect(
        "hive",
        text_type="STRING",
        float_type="DOUBLE",
        int_div="DIV",
        materialized="AS",
        class_text=("CASE WHEN typeof({column}) IN ('double', 'float') AND {column} = TRY_CAST({column} AS BIGINT) "
                    "THEN CAST(TRY_CAST({column} AS BIGINT) AS STRING) ELSE CAST({column} AS STRING) END"),
        connect_statements=("SET TIME ZONE 'UTC'",),
        type_name=lambda code: _type_name(code).removesuffix("_TYPE"),  # PyHive: TIMESTAMP_TYPE
        server_settings={"spark.sql.shuffle.partitions": "each evaluation is a few aggregations over one window: "
                                                         "about 2-4 x the executor cores suits them (Spark's default, "
                                                         "200, is tuned for bigger shuffles)"},
        results_store=False,
        values_inserts=True,
        add_columns_together=True,
        input_error=_hive_input_error,
        error_text=_hive_error_text,
        notes="no transactions or UPDATE on Parquet tables: keep the results store in another database",
    ),
}


def dialect_of(name: str) -> Dialect:
    """The entry for a SQLAlchemy dialect name, or :data:`ANSI` for an engine without one."""
    return DIALECTS.get(name, ANSI)


def class_text(dialect_name: str, column: str) -> str:
    """SQL for a class label as text, the same for 1, 1.0 and '1' on every engine.

    PostgreSQL writes a float 1.0 as '1'; SQLite, DuckDB and Spark write '1.0', which would
    never match an integer prediction or ``positive_label: 1`` (a float label column is
    common: it is what a pandas column with NaNs becomes).
    """
    return dialect_of(dialect_name).class_text_sql(column)


def bind_time(dialect_name: str, moment: datetime) -> Any:
    """A UTC instant as the dialect compares it: ISO text on SQLite, an aware datetime elsewhere."""
    return dialect_of(dialect_name).bind_time(moment)


def is_numeric_column(dialect_name: str, type_code: Any, declared: str | None = None) -> bool | None:
    """Whether a column holds numbers: from the driver's type code, or SQLite's declared type."""
    if declared is not None:
        return _numeric_sqlite_declared(declared)
    return dialect_of(dialect_name).numeric_type_code(type_code)
