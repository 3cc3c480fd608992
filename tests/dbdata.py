"""Write small, exact test data sets into a real database (reference schema), on every engine.

Everything goes through the engine's SQLAlchemy URL, as a user's own loader would: on Spark
(``hive://``) as ``CREATE TABLE ... USING parquet`` and multi-row ``INSERT ... VALUES``
(:func:`evaljobs.db.engine.insert_rows`: each Spark statement is a job, so row-at-a-time
inserts would take minutes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy

from evaljobs.db import sqlfiles
from evaljobs.db.dialects import bind_time, dialect_of
from evaljobs.db.engine import add_columns as engine_add_columns
from evaljobs.db.engine import insert_rows

PREDICTION_COLUMNS = ("prediction_id", "model_name", "model_version", "predicted_at", "predicted_label",
                      "score", "latency_seconds")


@dataclass
class Prediction:
    prediction_id: str
    model_version: str
    predicted_at: datetime
    predicted_label: str
    score: float | None = None
    latency_seconds: float | None = None
    model_name: str = "m"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Label:
    prediction_id: str
    label: str
    labeled_at: datetime


def is_spark(engine: sa.Engine) -> bool:
    return engine.dialect.name == "hive"


def column_type(engine: sa.Engine, sql_type: str) -> str:
    """A column type of sql/schema.sql's spelling (VARCHAR(n), DOUBLE PRECISION) in the engine's."""
    spec = dialect_of(engine.dialect.name)
    upper = sql_type.upper()
    if upper.startswith("VARCHAR") and spec.text_type != "VARCHAR":
        return spec.text_type
    if upper == "DOUBLE PRECISION":
        return spec.float_type
    if upper.startswith("TIMESTAMP") and is_spark(engine):
        return "TIMESTAMP"
    return sql_type


def create_table(engine: sa.Engine, name: str, columns: dict[str, str]) -> None:
    """(Re)create table ``name`` with ``columns`` (name -> type, schema.sql spelling)."""
    body = ", ".join(f"{column} {column_type(engine, kind)}" for column, kind in columns.items())
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
        conn.execute(sa.text(f"CREATE TABLE {name} ({body})" + (" USING parquet" if is_spark(engine) else "")))


def add_columns(engine: sa.Engine, table: str, columns: dict[str, str]) -> None:
    """Add feature columns (name -> type, schema.sql spelling) to a table."""
    with engine.begin() as conn:
        engine_add_columns(conn, table, {column: column_type(engine, kind) for column, kind in columns.items()})


def clear(engine: sa.Engine, table: str) -> None:
    """Delete every row (Spark's Parquet tables have no DELETE: TRUNCATE)."""
    with engine.begin() as conn:
        conn.execute(sa.text(f"{'TRUNCATE TABLE' if is_spark(engine) else 'DELETE FROM'} {table}"))


def insert(engine: sa.Engine, table: str, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table``; datetimes bound as the engine compares them."""
    dialect = engine.dialect.name
    bound = [{c: bind_time(dialect, v) if isinstance(v, datetime) else v for c, v in row.items()} for row in rows]
    with engine.begin() as conn:
        insert_rows(conn, table, bound)


def reset(engine: sa.Engine) -> None:
    """Drop and recreate the reference tables."""
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS labels"))
        conn.execute(sa.text("DROP TABLE IF EXISTS predictions"))
        for statement in sqlfiles.statements("schema", engine.dialect.name):
            conn.execute(sa.text(statement))


def load(engine: sa.Engine, predictions: list[Prediction], labels: list[Label], fresh: bool = True) -> None:
    """Insert rows as a serving system would (timestamps in UTC). Keys of ``Prediction.extra``
    become text columns of the predictions table (e.g. segment columns)."""
    if fresh:
        reset(engine)
    extra = sorted({key for p in predictions for key in p.extra})
    if fresh and extra:
        add_columns(engine, "predictions", {name: "VARCHAR(64)" for name in extra})
    insert(engine, "predictions", [{c: getattr(p, c) for c in PREDICTION_COLUMNS} | {name: p.extra.get(name) for name in extra}
                                   for p in predictions])
    insert(engine, "labels", [{"prediction_id": lab.prediction_id, "label": lab.label, "labeled_at": lab.labeled_at}
                              for lab in labels])


def for_each_data_set(url: str, job: Any, at: datetime, strategy: SearchStrategy,
                      check: Callable[..., None], examples: int = 25) -> None:
    """For hypothesis examples of ``strategy`` (``(predictions, labels)``): load them into ``url``,
    evaluate ``job`` at ``at`` and call ``check(result, predictions, labels, source, window)``.
    One engine serves every example."""
    from evaljobs.db.engine import connect
    from evaljobs.db.source import JobSource
    from evaljobs.ops.runner import evaluate_job
    from evaljobs.windows import plan_window

    engine = connect(url, create=True)

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(data: tuple[list[Prediction], list[Label]]) -> None:
        predictions, labels = data
        load(engine, predictions, labels)
        source, window = JobSource(engine, job), plan_window(at, job.window, job.label_delay)
        check(evaluate_job(source, window), predictions, labels, source, window)

    try:
        run()
    finally:
        engine.dispose()


def terminate_running_query(url: str, timeout: float = 20.0) -> int:
    """Kill the PostgreSQL session of an evaljobs run (another process) that is inside a query
    running for over a second, waiting up to ``timeout`` for one; returns how many were killed.

    The session is found by its name (evaljobs sets application_name), not by the statement's
    text, which pg_stat_activity cuts at 1024 bytes; only a read of a deliberately slow view runs
    for over a second (the results store's statements are quick). Polling, not a fixed sleep: on a
    loaded machine the run may take a while to get from its claim into its first query.
    """
    import time

    admin = sa.create_engine(url)
    deadline, killed = time.monotonic() + timeout, []
    try:
        while not killed and time.monotonic() < deadline:
            with admin.begin() as conn:
                killed = conn.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'active' "
                    "AND application_name = 'evaljobs' AND datname = current_database() "
                    "AND now() - query_start > INTERVAL '1 second' AND pid <> pg_backend_pid()")).all()
            time.sleep(0.1)
    finally:
        admin.dispose()
    return len(killed)
