"""Write small, exact test data sets into a real database (reference schema)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy

from evaljobs.db import sqlfiles
from evaljobs.db.dialects import bind_time


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


def reset(engine: sa.Engine) -> None:
    """Drop and recreate the reference tables."""
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS labels"))
        conn.execute(sa.text("DROP TABLE IF EXISTS predictions"))
        for statement in sqlfiles.statements("schema"):
            conn.execute(sa.text(statement))


def load(engine: sa.Engine, predictions: list[Prediction], labels: list[Label], fresh: bool = True) -> None:
    """Insert rows as a serving system would (timestamps in UTC). Keys of ``Prediction.extra``
    become text columns of the predictions table (e.g. segment columns)."""
    if fresh:
        reset(engine)
    dialect = engine.dialect.name
    extra = sorted({key for p in predictions for key in p.extra})
    with engine.begin() as conn:
        if fresh:
            for name in extra:
                conn.execute(sa.text(f"ALTER TABLE predictions ADD COLUMN {name} VARCHAR(64)"))
        if predictions:
            conn.execute(
                sa.text("INSERT INTO predictions (prediction_id, model_name, model_version, predicted_at, "
                        f"predicted_label, score, latency_seconds{''.join(', ' + name for name in extra)}) "
                        "VALUES (:prediction_id, :model_name, :model_version, :predicted_at, :predicted_label, "
                        f":score, :latency_seconds{''.join(', :' + name for name in extra)})"),
                [{"prediction_id": p.prediction_id, "model_name": p.model_name, "model_version": p.model_version,
                  "predicted_at": bind_time(dialect, p.predicted_at), "predicted_label": p.predicted_label,
                  "score": p.score, "latency_seconds": p.latency_seconds} | {name: p.extra.get(name) for name in extra}
                 for p in predictions],
            )
        if labels:
            conn.execute(
                sa.text("INSERT INTO labels (prediction_id, label, labeled_at) VALUES (:prediction_id, :label, :labeled_at)"),
                [{"prediction_id": lab.prediction_id, "label": lab.label, "labeled_at": bind_time(dialect, lab.labeled_at)}
                 for lab in labels],
            )



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
