"""Engines: connect to the user's database, and turn its failures into one-line errors.

Every other module reaches the database through :func:`connection`, so a driver's
multi-line exception never reaches the user and a password never appears in a message.
"""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from evaljobs.db import sqlfiles
from evaljobs.errors import ConfigError, SourceError, redact


def connect(url: str, create: bool = False) -> Engine:
    """An engine for ``url`` that evaluates in UTC; fails early with a one-line SourceError.

    A SQLite file that does not exist is an error (SQLite would silently create an empty
    one) unless ``create`` is true, as for ``init-db`` and ``demo-data``.
    """
    try:
        parsed = sa.engine.make_url(url)
    except ArgumentError:
        raise ConfigError(f"database URL {redact(url)!r} is not a valid SQLAlchemy URL",
                          "use e.g. sqlite:///evaljobs.db or postgresql+psycopg://user@host/db") from None
    if parsed.host and "@" in parsed.host:
        # The URL was split at the password's own '@': the rest of it would be taken for the
        # host name and printed in every connection error.
        raise ConfigError("the database URL has an unescaped '@' in its user or password",
                          "URL-encode it as %40 (e.g. postgresql+psycopg://bob:p%40ss@db/ml)")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
            and not parsed.database.startswith("file:") and not create and not os.path.exists(parsed.database):
        raise SourceError(f"SQLite database file {parsed.database!r} does not exist",
                          "check 'database:' in the config (relative paths start in the current directory), "
                          "or create it with evaljobs init-db")
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        # Compare timestamps in UTC whatever the server's or role's TimeZone says (keeping any
        # options the URL already carries, such as a search_path).
        given = parsed.query.get("options")
        given = " ".join(given) if isinstance(given, tuple) else given
        connect_args["options"] = f"{given} -c timezone=UTC" if given else "-c timezone=UTC"
    try:
        engine = sa.create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
    except NoSuchModuleError:
        raise SourceError(f"no SQLAlchemy dialect for {parsed.drivername!r}",
                          "install the driver (e.g. pip install 'evaljobs[postgres]')") from None
    except ImportError as exc:
        raise SourceError(f"the database driver for {parsed.drivername!r} is not installed ({exc.name})",
                          "install it (e.g. pip install 'evaljobs[postgres]')") from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_math)
    return engine


def _sqlite_math(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # SQLite has LN only when built with math functions; provide it when it is missing.
    try:
        dbapi_connection.execute("SELECT ln(1)")
    except sqlite3.OperationalError:
        dbapi_connection.create_function("ln", 1, math.log, deterministic=True)


def describe_engine(engine: Engine) -> str:
    """The engine's URL with any password hidden."""
    return engine.url.render_as_string(hide_password=True)


@contextmanager
def connection(engine: Engine, purpose: str) -> Iterator[Connection]:
    """A connection whose failures become one-line SourceErrors naming ``purpose``."""
    try:
        conn = engine.connect()
    except SQLAlchemyError as exc:
        raise SourceError(
            f"cannot connect to database {describe_engine(engine)}: {first_line(getattr(exc, 'orig', exc))}",
            "check 'database:' in the config and that the server is running",
        ) from None
    try:
        with conn:
            yield conn
    except DBAPIError as exc:
        raise SourceError(f"{purpose} failed on {describe_engine(engine)}: {first_line(exc.orig)}") from None
    except SQLAlchemyError as exc:
        raise SourceError(f"{purpose} failed on {describe_engine(engine)}: {first_line(exc)}") from None


def first_line(error: object) -> str:
    """The first line of a driver error, passwords redacted."""
    text = str(error).strip().splitlines()
    return redact(text[0]) if text else type(error).__name__


def create_reference_schema(engine: Engine) -> None:
    """Create the reference ``predictions`` and ``labels`` tables (``sql/schema.sql``) if missing."""
    with connection(engine, "creating the reference schema") as conn:
        for statement in sqlfiles.statements("schema"):
            conn.execute(sa.text(statement))
        conn.commit()
