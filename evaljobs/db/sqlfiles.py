"""Named SQL files from ``sql/``, rendered with quoted identifiers, per engine.

Queries are templates: ``{name}`` slots take identifiers that evaljobs quotes for the
engine's dialect (never raw user text), and the slots named in :data:`INCLUDES` take a shared
fragment, so that a rule such as "the latest label wins" is written once. Values are always
bound parameters (``:name``).

Per-engine variants follow dbt's override rule: ``sql/<dialect>/<name>.sql``, when it exists,
is used in place of ``sql/<name>.sql`` for that dialect (``sqlite``, ``postgresql``, ``duckdb``,
``hive``...). A new engine is an entry in :mod:`evaljobs.db.dialects` plus the few overrides it needs.

In a source checkout the files are read from ``sql/`` at the repository root; an installed
wheel carries them as ``evaljobs/sql/``.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Mapping

from evaljobs.db.dialects import dialect_of

#: Slot name -> (fragment file, the fragment's own fixed slots). A fragment is rendered with
#: the including query's identifiers and dialect, so its overrides apply too.
INCLUDES: dict[str, tuple[str, dict[str, str]]] = {
    "window_rows": ("window_rows", {}),
    # p.model = :model AND :<bounds>_start <= p.predicted_at < :<bounds>_end
    "model_window": ("fragments/model_window", {"bounds": "window"}),
    "model_reference_window": ("fragments/model_window", {"bounds": "reference"}),
    "model_recent_window": ("fragments/model_window", {"bounds": "recent"}),
    # The equal-width score bin (0 .. :bins - 1) of {score}, NULL for a NULL score.
    "score_bin": ("fragments/score_bin", {}),
    # The latest label before :labels_as_of wins, per (prediction_id, model_version); a labels
    # table with one declared row per prediction id gets fragments/latest_label_unique instead
    # (JobSource.identifiers fills the slot).
    "label_join": ("fragments/label_join", {}),
    "latest_label_rank": ("fragments/latest_label_rank", {}),
    # Per version, predictions up to :window_end; labels of unknown prediction ids (CTEs).
    "version_totals": ("fragments/version_totals", {}),
    "orphan_labels": ("fragments/orphan_labels", {}),
    # The window's rows with their latest label, as a task compares them (a CTE).
    "task_rows": ("fragments/task_rows", {}),
    # The labelled reference predictions (drift's label reference, the estimate's calibration).
    # The aggregates of one cell of scored predictions (the estimate's counts).
    "score_cell_sums": ("fragments/score_cell_sums", {}),
    "labelled_reference": ("fragments/labelled_reference", {"class_score_columns": "", "class_score_list": ""}),
    # The sums of the regression metrics (a SELECT list).
    "regression_sums": ("fragments/regression_sums", {}),
    # The latency histogram's aggregates (a SELECT list; the caller fills {bucket_counts}).
    "latency_sums": ("fragments/latency_sums", {}),
    # Segments: the cardinality guard's CTEs and the result (sql/segment_aggregates.sql and its overrides).
    "segment_value_ranks": ("fragments/segment_value_ranks", {}),
    "segment_output": ("fragments/segment_output", {}),
    # Label delay: each prediction's first label arrival (a CTE), and instants as epoch seconds.
    "label_delay_rows": ("fragments/label_delay_rows", {}),
    # The look-back population with each prediction's latest label and first label's delay (a
    # CTE of sql/window_aggregates.sql); its first label's time is a window MIN, or the label's
    # own time when labels are unique (JobSource.identifiers then renders first_label_time_unique).
    "population_rows": ("fragments/population_rows", {}),
    "first_labeled_at": ("fragments/first_label_time", {}),
    "labeled_epoch": ("fragments/epoch_seconds", {"moment": "labeled_at"}),
    "predicted_epoch": ("fragments/epoch_seconds", {"moment": "predicted_at"}),
    "delay_seconds": ("fragments/delay_seconds", {}),
    # The planner barrier of sql/postgresql/label_delays.sql, incremental_delay_parts.sql and
    # label_delay_suggestion.sql: empty unless the labels are unique
    # (JobSource.identifiers then renders fragments/delay_rows_barrier_unique).
    "delay_rows_barrier": ("fragments/delay_rows_barrier", {}),
    # Whether sql/postgresql/label_delay_suggestion.sql computes its twice-read rows once:
    # MATERIALIZED unless the labels are unique (then fragments/delay_rows_materialization_unique).
    "delay_rows_materialization": ("fragments/delay_rows_materialization", {}),
    # The incremental part (0, 1, ...) of a predicted_at column (evaljobs/ops/incremental/).
    "part_number": ("fragments/part_number", {}),
    # The window's rows with predicted_at and their latest label, for the incremental parts (a
    # derived table's query): every prediction with labels as of :labels_as_of, or only those of
    # the including query's `changed` CTE with labels as of :stored_as_of / :labels_as_of. The
    # fixed "changed_only": "" fills that slot with nothing, so it is included only where wanted.
    "part_rows": ("fragments/part_rows", {"labels_bound": "labels_as_of", "changed_only": ""}),
    "changed_rows_before": ("fragments/part_rows", {"labels_bound": "stored_as_of"}),
    "changed_rows_after": ("fragments/part_rows", {"labels_bound": "labels_as_of"}),
    "changed_only": ("fragments/changed_only", {}),
    # Drift's fine histogram over a both_samples CTE (sql/drift_numeric_binned.sql and its
    # window-only form sql/drift_numeric_binned_current.sql).
    "fine_bins": ("fragments/fine_bins", {}),
}


def sql_directory() -> Path:
    """Where the SQL files are: inside the installed package, else the checkout's ``sql/``."""
    packaged = resources.files("evaljobs") / "sql"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "sql"


@lru_cache(maxsize=None)
def read_sql(name: str, dialect: str | None = None) -> str:
    """The text of ``sql/<dialect>/<name>.sql`` if that override exists, else of ``sql/<name>.sql``."""
    directory = sql_directory()
    if dialect:
        override = directory / dialect / f"{name}.sql"
        if override.is_file():
            return override.read_text(encoding="utf-8")
    return (directory / f"{name}.sql").read_text(encoding="utf-8")


def render(name: str, identifiers: Mapping[str, str], slots: Mapping[str, str] | None = None,
           dialect: str | None = None) -> str:
    """``sql/<name>.sql`` (or its ``dialect`` override) with its slots filled and fragments included.

    ``slots`` fills further slots with SQL that evaljobs generated (another rendered fragment,
    a list of generated column expressions), never with user text. The dialect's own slots
    (``{text_type}``, ``{float_type}``, ``{int_div}``, ``{materialized}``) are always there.
    """
    text = _without_comments(read_sql(name, dialect))
    filled = {**dialect_of(dialect or "").slots, **identifiers, **(slots or {})}
    for field in {field for _, field, _, _ in string.Formatter().parse(text) if field}:
        if field in INCLUDES and field not in filled:
            fragment, fixed = INCLUDES[field]
            filled[field] = render(fragment, {**identifiers, **fixed}, slots, dialect).strip()
    return text.format_map(filled)


def _without_comments(text: str) -> str:
    # Comments may mention :parameters, which the driver would otherwise expect values for.
    # (Our SQL has no '--' inside string literals.) The lines they leave empty go too: the server
    # shows a running statement's first 1024 bytes (PostgreSQL's pg_stat_activity), and a DBA
    # looking for what evaljobs reads should find the table names there, not blank lines.
    return re.sub(r"[ \t]*\n(?:[ \t]*\n)*", "\n", re.sub(r"--[^\n]*", "", text))


def statements(name: str, dialect: str | None = None) -> list[str]:
    """The statements of a multi-statement file such as ``schema.sql``, comments removed."""
    text = _without_comments(read_sql(name, dialect))
    return [part.strip() for part in text.split(";") if part.strip()]
