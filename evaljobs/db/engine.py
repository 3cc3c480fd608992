"""Engines: connect to the user's database, and turn its failures into one-line errors.

Every other module reaches the database through :func:`connection`, so a driver's
multi-line exception never reaches the user and a password never appears in a message.
"""

from __future__ import annotations

import math
import os
import time
import weakref
from datetime import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from evaljobs.db import sqlfiles
from evaljobs.db.dialects import Waits, dialect_of
from evaljobs.errors import ConfigError, SourceError, redact


def _refuse_unescaped_userinfo(url: str, setting: str) -> None:
    """Refuse a URL whose password holds an unescaped ``@``, ``/``, ``#`` or ``?``.

    A parser splits such a URL inside the password, and the rest of the password becomes the
    host or the database name, which every later message prints. The message here never shows
    the URL.
    """
    scheme, separator, rest = url.partition("://")
    rest = rest.partition("?")[0]  # query values (options=...) may hold '@'
    if not separator or scheme.startswith("sqlite") or "@" not in rest:
        return
    userinfo = rest.rpartition("@")[0]
    if "@" in userinfo:
        raise ConfigError(f"the {setting} URL has an unescaped '@' in its user or password",
                          "URL-encode it as %40 (e.g. postgresql+psycopg://bob:p%40ss@db/ml)")
    if any(ch in userinfo for ch in "/#?"):
        raise ConfigError(f"the {setting} URL has an unescaped '/', '#' or '?' in its user or password",
                          "URL-encode them as %2F, %23 and %3F")


#: The config setting each engine came from (``database``, ``results.database``), for hints.
_SETTINGS: "weakref.WeakKeyDictionary[Engine, str]" = weakref.WeakKeyDictionary()


def connect(url: str, create: bool = False, setting: str = "database", waits: Waits | None = None) -> Engine:
    """An engine for ``url`` that evaluates in UTC; fails early with a one-line SourceError.

    A SQLite file that does not exist is an error (SQLite would silently create an empty
    one) unless ``create`` is true, as for ``init-db`` and ``demo-data``. ``setting`` is the
    config key the URL came from, which connection errors name. ``waits`` bounds connects
    and statements (``timeouts:``; defaults when None), as the engine's dialect entry says.
    """
    waits = waits or Waits()
    _refuse_unescaped_userinfo(url, setting)
    try:
        parsed = sa.engine.make_url(url)
        parsed.port  # noqa: B018 - a port such as '99x' raises here, not deep in the driver
    except (ArgumentError, ValueError):
        raise ConfigError(f"{setting} URL {redact(url)!r} is not a valid SQLAlchemy URL (check its scheme, "
                          "host and port)",
                          "use e.g. sqlite:///evaljobs.db or postgresql+psycopg://user@host:5432/db") from None
    if parsed.host and "@" in parsed.host:
        # The URL was split at the password's own '@': the rest of it would be taken for the
        # host name and printed in every connection error.
        raise ConfigError("the database URL has an unescaped '@' in its user or password",
                          "URL-encode it as %40 (e.g. postgresql+psycopg://bob:p%40ss@db/ml)")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
            and not parsed.database.startswith("file:") and not create and not os.path.exists(parsed.database):
        raise SourceError(f"SQLite database file {parsed.database!r} does not exist",
                          f"check '{setting}:' in the config (relative paths start in the current directory), "
                          "or create it with evaljobs init-db")
    spec = dialect_of(parsed.get_backend_name())
    connect_args: dict[str, Any] = spec.connect_args(parsed) if spec.connect_args else {}
    if spec.wait_args is not None:
        connect_args = spec.wait_args(parsed, waits, connect_args)
    try:
        engine = sa.create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
    except NoSuchModuleError:
        raise SourceError(f"no SQLAlchemy dialect for {parsed.drivername!r}",
                          "install the driver (e.g. pip install 'evaljobs[postgres]')") from None
    except ImportError as exc:
        raise SourceError(f"the database driver for {parsed.drivername!r} is not installed ({exc.name})",
                          "install it (e.g. pip install 'evaljobs[postgres]')") from None
    spec = dialect_of(engine.dialect.name)
    if spec.on_connect is not None:
        sa.event.listen(engine, "connect", spec.on_connect)
    if spec.connect_statements:
        sa.event.listen(engine, "connect", _run_on_connect(spec.connect_statements))
    if spec.interrupt_slow_statements:
        _interrupt_after(engine, waits.statement)
    _SETTINGS[engine] = setting
    return engine


def _interrupt_after(engine: Engine, seconds: float) -> None:
    """Interrupt a statement that runs longer than ``seconds`` (SQLite: a progress handler that
    the library calls every few thousand virtual-machine steps; returning 1 aborts the statement
    with "interrupted"). The clock starts when SQLAlchemy executes the statement."""

    @sa.event.listens_for(engine, "connect")
    def install(dbapi_connection: Any, record: Any) -> None:
        def check() -> int:
            started = record.info.get("evaljobs_statement_started")
            return 1 if started is not None and time.monotonic() - started > seconds else 0
        dbapi_connection.set_progress_handler(check, 10_000)

    @sa.event.listens_for(engine, "before_cursor_execute")
    def start(conn: Connection, *_args: Any) -> None:
        conn.connection.info["evaljobs_statement_started"] = time.monotonic()

    @sa.event.listens_for(engine, "after_cursor_execute")
    def stop(conn: Connection, *_args: Any) -> None:
        conn.connection.info.pop("evaljobs_statement_started", None)


def _run_on_connect(statements: tuple[str, ...]) -> Any:
    def run(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for statement in statements:
                cursor.execute(statement)
        finally:
            cursor.close()
    return run


def describe_engine(engine: Engine) -> str:
    """The engine's URL with any password hidden."""
    return engine.url.render_as_string(hide_password=True)


@contextmanager
def connection(engine: Engine, purpose: str) -> Iterator[Connection]:
    """A connection whose failures become one-line SourceErrors naming ``purpose``."""
    dialect = engine.dialect.name
    try:
        conn = engine.connect()
    except SQLAlchemyError as exc:
        raise SourceError(
            f"cannot connect to database {describe_engine(engine)}: {first_line(getattr(exc, 'orig', exc), dialect)}",
            wait_hint(str(getattr(exc, 'orig', exc)), connecting=True)
            or f"check '{_SETTINGS.get(engine, 'database')}:' in the config and that the server is running",
        ) from None
    try:
        with conn:
            yield conn
    except DBAPIError as exc:
        reason = first_line(exc.orig, dialect)
        raise SourceError(f"{purpose} failed on {describe_engine(engine)}: {reason}",
                          wait_hint(reason) or privilege_hint(purpose, reason)) from None
    except SQLAlchemyError as exc:
        raise SourceError(f"{purpose} failed on {describe_engine(engine)}: {first_line(exc)}") from None


def wait_hint(reason: str, connecting: bool = False) -> str | None:
    """The setting to look at when a driver gave up waiting (see ``timeouts:``)."""
    text = reason.lower()
    if connecting and "timeout" in text:
        return "the server did not answer within timeouts.connect; check that it is up, or raise timeouts.connect"
    if "statement timeout" in text or "interrupted" in text:
        return ("the statement ran longer than timeouts.statement (a lock held elsewhere, or a slow query); "
                "raise timeouts.statement, or see README, Failure behaviour")
    return None


def privilege_hint(purpose: str, reason: str) -> str | None:
    """What a role refused by the results store needs (README, Failure behaviour: a role without
    CREATE works once the tables exist, but it must be able to write them: the claim is a row)."""
    if purpose.startswith("results store") and "permission denied" in reason.lower():
        return ("the results store is required and written by every run: grant the role SELECT, INSERT, UPDATE "
                "and DELETE on evaljobs_results and evaljobs_summaries, SELECT on evaljobs_schema_version; or run with "
                "--dry-run")
    return None


def first_line(error: BaseException, dialect: str = "") -> str:
    """The line of a driver error that says what went wrong (the first, on most engines),
    passwords redacted."""
    return redact(dialect_of(dialect).error_text(error))


def insert_rows(conn: Connection, table: str, rows: list[dict[str, Any]], chunk: int = 2500) -> None:
    """Insert ``rows`` (dicts with the same keys; datetimes already bound for the dialect) into
    ``table`` (a trusted, already quoted name): for the demo and test data, never user input.

    On engines whose driver runs one statement per row (Spark), rows go as multi-row ``VALUES``
    lists, with timestamps and floats cast (Spark stores no string in a TIMESTAMP column and
    reads ``0.1`` as a DECIMAL).
    """
    if not rows:
        return
    columns = list(rows[0])
    names = ", ".join(columns)
    if not dialect_of(conn.dialect.name).values_inserts:
        placeholders = ", ".join(f":{c}" for c in columns)
        statement = sa.text(f"INSERT INTO {table} ({names}) VALUES ({placeholders})")
        for start in range(0, len(rows), chunk):
            conn.execute(statement, rows[start:start + chunk])
        return
    for start in range(0, len(rows), chunk):
        params: dict[str, Any] = {}
        tuples = []
        for i, row in enumerate(rows[start:start + chunk]):
            parts = []
            for j, column in enumerate(columns):
                key, value = f"v{i}_{j}", row[column]
                params[key] = value
                parts.append(_typed_value(key, value))
            tuples.append(f"({', '.join(parts)})")
        conn.execute(sa.text(f"INSERT INTO {table} ({names}) VALUES {', '.join(tuples)}"), params)


def _typed_value(key: str, value: Any) -> str:
    if isinstance(value, datetime):
        return f"CAST(:{key} AS TIMESTAMP)"
    if isinstance(value, float):
        if math.isnan(value):
            return "CAST('NaN' AS DOUBLE)"
        if math.isinf(value):
            return f"CAST('{'' if value > 0 else '-'}Infinity' AS DOUBLE)"
        return f"CAST(:{key} AS DOUBLE)"
    return f":{key}"


def add_columns(conn: Connection, table: str, columns: dict[str, str]) -> None:
    """Add columns (name -> type) to a table (Spark spells it ADD COLUMNS (...))."""
    if dialect_of(conn.dialect.name).add_columns_together:
        conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMNS ({', '.join(f'{c} {t}' for c, t in columns.items())})"))
        return
    for column, kind in columns.items():
        conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))


def create_reference_schema(engine: Engine) -> None:
    """Create the reference ``predictions`` and ``labels`` tables (``sql/schema.sql``) if missing."""
    with connection(engine, "creating the reference schema") as conn:
        for statement in sqlfiles.statements("schema", engine.dialect.name):
            conn.execute(sa.text(statement))
        conn.commit()
