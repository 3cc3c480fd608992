"""PostgreSQL's plans of the label-delay queries: the look-back population is hashed into its
(version, delay minute) or (part, version) groups, never sorted whole.

The planner estimates one such group per prediction (it multiplies the distinct counts of
labeled_at and predicted_at), so the plain queries sorted every row of the look-back on disk
before finding a few groups per version (sql/postgresql/label_delays.sql's head comment; 7.0 s
-> 5.8 s at 10M rows). This checks the statements as evaluation runs them -- sql/label_delays.sql
(regression jobs), sql/window_aggregates.sql (classification jobs count the delays beside their
confusion cells), sql/incremental_delay_parts.sql (incremental windows) and
sql/label_delay_suggestion.sql (``evaljobs run --explain``) with their PostgreSQL overrides -- on
100,000 predictions with one declared label each, with EXPLAIN (ANALYZE, FORMAT JSON) at the
default work_mem. Without the overrides each of the three label-delay statements sorts all
100,000 rows with an external merge, and sql/window_aggregates.sql with a window flag or a delay
bucket among its group keys did too.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from evaljobs.config import Job
from evaljobs.db import sqlfiles
from evaljobs.db.engine import connect
from evaljobs.db.source import JobSource
from evaljobs.ops import incremental
from evaljobs.ops.store import ResultsStore
from evaljobs.quality.classification import evaluate_classification
from evaljobs.quality.label_delay import label_delays, lookback, suggest_label_delays
from evaljobs.windows import plan_window

from tests.dbdata import reset

AT = datetime(2026, 1, 10, tzinfo=timezone.utc)
PREDICTIONS = 100_000
LABEL_DELAY_QUERIES = {"label_delays", "incremental_delay_parts", "label_delay_suggestion", "window_aggregates"}


class RecordingSource(JobSource):
    """A JobSource that notes each statement it runs (name, parameters, generated slots)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statements: list[tuple[str, dict[str, Any], dict[str, str] | None]] = []

    def query(self, name: str, params: dict[str, Any], slots: dict[str, str] | None = None) -> list[sa.Row]:
        self.statements.append((name, params, slots))
        return super().query(name, params, slots)


def nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def sorted_rows(node: dict) -> int:
    """How many rows a plan node put out over all its loops (parallel workers' included)."""
    return round(node.get("Actual Rows", 0) * node.get("Actual Loops", 1))


def test_label_delay_populations_are_hashed_not_sorted(postgres_url: str) -> None:
    job = Job.model_validate({"name": "j", "model": "m", "task": "multiclass", "window": "6h",
                              "label_delay": "1h", "schedule": "0 * * * *"})
    window = plan_window(AT, job.window, job.label_delay)
    start = window.end - lookback(window, job.label_delay)
    engine = connect(postgres_url, create=True)
    try:
        reset(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE UNIQUE INDEX labels_one_per_prediction ON labels (prediction_id)"))
            # Three versions over the look-back; 80% labelled 0 s to 2 h after the prediction.
            conn.execute(sa.text(
                "INSERT INTO predictions (prediction_id, model_name, model_version, predicted_at, predicted_label) "
                "SELECT 'p' || i, 'm', 'v' || (i % 3), :start + (i * :step) * INTERVAL '1 second', 'a' "
                "FROM generate_series(0, :n - 1) AS i"),
                {"start": start, "step": (window.end - start).total_seconds() / PREDICTIONS, "n": PREDICTIONS})
            conn.execute(sa.text(
                "INSERT INTO labels (prediction_id, label, labeled_at) "
                "SELECT prediction_id, 'a', predicted_at + ((hashtext(prediction_id) & 65535) % 7200) * INTERVAL '1 second' "
                "FROM predictions WHERE hashtext(prediction_id) % 5 <> 0"))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE predictions"))
            conn.execute(sa.text("ANALYZE labels"))
        source = RecordingSource(engine, job)
        source.check_schema()
        assert source.labels_unique
        label_delays(source, window)
        evaluate_classification(source, window)  # counts the delays beside the cells
        suggest_label_delays(source, window)
        parts = incremental.evaluate_incremental(source, window, ResultsStore(engine))
        assert parts is not None and parts.delays is not None  # the look-back's parts were queried
        ran = [statement for statement in source.statements if statement[0] in LABEL_DELAY_QUERIES]
        assert {name for name, _, _ in ran} == LABEL_DELAY_QUERIES

        for name, params, slots in ran:
            statement = sqlfiles.render(name, source.identifiers(), slots, source.dialect)
            with engine.begin() as conn:
                conn.execute(sa.text("SET LOCAL jit = off"))
                conn.execute(sa.text("SET LOCAL work_mem = '4MB'"))  # PostgreSQL's default
                [[explained]] = conn.execute(sa.text(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}"), params).all()
            plan = explained[0]["Plan"]
            for node in nodes(plan):
                methods = [node.get("Sort Method", "")] + [w.get("Sort Method", "") for w in node.get("Workers", [])]
                assert not any("external" in method for method in methods), (name, node)
                if node["Node Type"] == "Sort":
                    # A sort of the groups or of one delay minute's rows is fine; of the population, not.
                    assert sorted_rows(node) < PREDICTIONS // 10, (name, node["Sort Key"], sorted_rows(node))
                keys = " ".join(node.get("Group Key", []))
                if node["Node Type"] == "Aggregate" and ("ceil(" in keys or "floor(" in keys) \
                        and node.get("Partial Mode") != "Finalize":
                    # The first GROUP BY, over the rows: (version, delay minute) or (part, version).
                    assert node["Strategy"] == "Hashed", (name, keys, node["Strategy"])
    finally:
        engine.dispose()
