"""The dialect table: every engine's entry renders every query, and type codes read right."""

from __future__ import annotations

import re
import string
from datetime import datetime, timezone

import pytest

from evaljobs.db import sqlfiles
from evaljobs.db.dialects import ANSI, DIALECTS, bind_time, dialect_of, is_numeric_column
from evaljobs.db.sqlfiles import INCLUDES, sql_directory


def _queries() -> list[str]:
    root = sql_directory()
    names = set()
    for path in root.rglob("*.sql"):
        relative = path.relative_to(root)
        if relative.parts[0] in DIALECTS:  # an override: rendered under its own dialect below
            relative = relative.relative_to(relative.parts[0])
        if relative.parts[0] in ("fragments", "migrations") or relative.stem == "schema":
            continue
        names.add(relative.with_suffix("").as_posix())
    return sorted(names)


@pytest.mark.parametrize("dialect", sorted(DIALECTS) + ["trino"])
def test_every_query_renders_with_only_dialect_and_identifier_slots(dialect: str) -> None:
    # Every slot of every file that is not a dialect slot or a fragment gets a quoted name; a
    # slot the dialect does not fill would be a KeyError.
    fields = {field for path in sql_directory().rglob("*.sql")
              for _, field, _, _ in string.Formatter().parse(path.read_text()) if field}
    ids = {field: f'"{field}"' for field in fields - set(INCLUDES) - set(ANSI.slots)}
    for name in _queries():
        try:
            sqlfiles.read_sql(name, dialect)
        except FileNotFoundError:
            continue  # an engine-only query (sql/sqlite/...)
        rendered = sqlfiles.render(name, ids, {f: "x" for f in ("score_ranks", "bucket_counts", "current_rows",
                                                                "reference_rows")}, dialect)
        spec = dialect_of(dialect)
        if spec.text_type != "VARCHAR":
            assert not re.search(r"AS VARCHAR\b", rendered), (dialect, name)
        if spec.float_type != "DOUBLE PRECISION":
            assert "DOUBLE PRECISION" not in rendered, (dialect, name)
        if spec.materialized != "AS MATERIALIZED":
            assert "MATERIALIZED" not in rendered, (dialect, name)


def test_an_engine_without_an_entry_gets_standard_sql() -> None:
    assert dialect_of("snowflake") is ANSI
    assert ANSI.slots == {"text_type": "VARCHAR", "float_type": "DOUBLE PRECISION", "int_div": "/",
                          "materialized": "AS MATERIALIZED"}


@pytest.mark.parametrize(("dialect", "code", "numeric"), [
    ("duckdb", "DOUBLE", True), ("duckdb", "DECIMAL(10,2)", True), ("duckdb", "UBIGINT", True),
    ("duckdb", "INTERVAL", False), ("duckdb", "VARCHAR", False), ("duckdb", "BOOLEAN", False),
    ("duckdb", "TIMESTAMP WITH TIME ZONE", False),
    ("hive", "DOUBLE_TYPE", True), ("hive", "INT_TYPE", True), ("hive", "STRING_TYPE", False),
    ("hive", "INTERVAL_DAY_TIME_TYPE", False), ("hive", None, None),
    ("postgresql", 701, True), ("postgresql", 1700, True), ("postgresql", 25, False), ("postgresql", 16, False),
])
def test_type_codes_of_the_column_layout(dialect: str, code: object, numeric: bool | None) -> None:
    assert is_numeric_column(dialect, code) is numeric


@pytest.mark.parametrize(("dialect", "code", "instant", "name"), [
    ("duckdb", "TIMESTAMP WITH TIME ZONE", True, "TIMESTAMP WITH TIME ZONE"), ("duckdb", "TIMESTAMP", True, "TIMESTAMP"),
    ("duckdb", "DATE", False, "DATE"), ("duckdb", "VARCHAR", False, "VARCHAR"),
    ("hive", "TIMESTAMP_TYPE", True, "TIMESTAMP"), ("hive", "STRING_TYPE", False, "STRING"), ("hive", "DATE_TYPE", False, "DATE"),
    ("postgresql", 1184, True, "timestamptz"), ("postgresql", 1114, True, "timestamp"),
    ("postgresql", 1082, False, "date"), ("postgresql", 1043, False, "varchar"),
    ("sqlite", None, None, "unknown"),
])
def test_time_type_codes_for_the_doctor(dialect: str, code: object, instant: bool | None, name: str) -> None:
    spec = dialect_of(dialect)
    assert spec.timestamp_type_code(code) is instant and spec.type_name(code) == name


@pytest.mark.parametrize(("declared", "numeric"), [
    ("DOUBLE PRECISION", True), ("INTEGER", True), ("NUMERIC(10, 2)", True), ("REAL", True),
    ("VARCHAR(20)", False), ("TEXT", False), ("", False), ("TIMESTAMP WITH TIME ZONE", False), ("BOOLEAN", False),
])
def test_sqlite_declared_types(declared: str, numeric: bool) -> None:
    assert is_numeric_column("sqlite", None, declared) is numeric


def test_time_binding() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=timezone.utc)
    assert bind_time("sqlite", moment) == "2026-01-02 03:04:05.600000"
    for dialect in ("postgresql", "duckdb", "hive", "trino"):
        assert bind_time(dialect, moment) == moment
