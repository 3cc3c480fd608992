"""What differs between SQL engines, in one place.

SQL templates are written once (``sql/``); the few expressions that engines spell differently
come from here, keyed by the SQLAlchemy dialect name.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def class_text(dialect_name: str, column: str) -> str:
    """SQL for a class label as text, the same for 1, 1.0 and '1' on every engine.

    PostgreSQL writes a float 1.0 as '1'; SQLite and DuckDB write '1.0', which would never
    match an integer prediction or ``positive_label: 1`` (a float label column is common: it
    is what a pandas column with NaNs becomes).
    """
    if dialect_name == "sqlite":
        return (f"CASE WHEN typeof({column}) = 'real' AND {column} = CAST({column} AS INTEGER) "
                f"THEN CAST(CAST({column} AS INTEGER) AS VARCHAR) ELSE CAST({column} AS VARCHAR) END")
    if dialect_name == "duckdb":
        return (f"CASE WHEN typeof({column}) IN ('DOUBLE', 'FLOAT') AND {column} = TRY_CAST({column} AS BIGINT) "
                f"THEN CAST(TRY_CAST({column} AS BIGINT) AS VARCHAR) ELSE CAST({column} AS VARCHAR) END")
    return f"CAST({column} AS VARCHAR)"


def bind_time(dialect_name: str, moment: datetime) -> Any:
    """A UTC instant as the dialect compares it: ISO text on SQLite, an aware datetime elsewhere."""
    utc = moment.astimezone(timezone.utc)
    if dialect_name == "sqlite":
        return utc.replace(tzinfo=None).isoformat(sep=" ")
    return utc
