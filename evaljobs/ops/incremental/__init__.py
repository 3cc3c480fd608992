"""Incremental windows (issue 9): a window's core aggregates from stored parts.

A job that evaluates a 7-day window every hour would otherwise rescan seven days each hour.
With a results store, the window is cut into **parts** of ``incremental.part`` (default: the
schedule's interval), aligned to the window's end, so that the next window shares all parts but
one. Each part's mergeable aggregates -- the confusion cells' prediction counts (the cells with
no label give the coverage) and the latency histogram's counts, sums and ranges -- are stored
in the results store (``evaljobs_summaries``, kind ``window_part``) with

- a **fingerprint**: the part's prediction count and latest ``predicted_at`` (one cheap GROUP BY
  over the ``(model_name, predicted_at)`` index, ``sql/incremental_part_counts.sql``), and
- its **as-of**: the ``labels_as_of`` its labels were read at.

A stored part is reused when its fingerprint is unchanged. Labels that arrived between its
as-of and this run's ``labels_as_of`` (late labels) are applied as a change: the cells of the
predictions they join, as of both times, read from those predictions alone
(``sql/incremental_label_changes.sql``), -1 and +1. Every other part (new, or its predictions
changed) is recomputed (``sql/incremental_part_cells.sql``, ``sql/incremental_part_latency.sql``,
one statement per run of consecutive stale parts) and stored. The parts are then summed
(:func:`~evaljobs.ops.incremental.parts.merge`), which gives the same counts as the full query.

The same parts, over the label-delay look-back, hold the label delays (kind ``delay_part``:
sql/label_delays.sql's counts per part; a prediction whose first label arrived since is added,
``sql/incremental_delay_changes.sql``), when the look-back and the "due" times of the multiples
of ``label_delay`` fall on the grid. Orphan labels are counted per part of label *arrival* time
(kind ``orphan_part``, fingerprinted by the labels' count and latest ``labeled_at``), again for
the arrival parts holding labels of predictions this run read again. The predictions before the
window (``model_predictions_total``) are a stored count before an earlier window's start plus
those made since (kind ``history``). Categorical drift of features and the predicted label is
counted per part and value too (kind ``drift_part``;
:class:`~evaljobs.ops.incremental.drift.DriftParts`), and a fixed ``baseline`` or ``table``
reference is summarised once (kind ``reference``: categorical counts, or a numeric value's fine
bins) until its fingerprint changes. Always recomputed: segments,
numeric drift of the window, label drift and estimates.

Not incremental (the whole window is evaluated as before): regression jobs, and binary jobs
with a score column -- their exact ROC AUC needs the ranks of the whole window, and their log
loss sums would only agree with a full recomputation to rounding.

The package's modules, by role:

- :mod:`~evaljobs.ops.incremental.parts`: the grid, the parts' aggregates and their merging;
  pure (no database, no results store).
- :mod:`~evaljobs.ops.incremental.queries`: the part queries (``sql/incremental_*.sql``), each
  read into those aggregates.
- :mod:`~evaljobs.ops.incremental.stored`: the results-store kinds, which stored parts still
  hold, and how a run's parts are written (one transaction).
- :mod:`~evaljobs.ops.incremental.evaluate`: the orchestration -- plan the parts, reuse or
  recompute them, store them, and give the window's records (:func:`evaluate_incremental`);
  :mod:`~evaljobs.ops.incremental.drift` does the same for categorical drift.

The entry points are re-exported here (``from evaljobs.ops import incremental``).
"""

from evaljobs.ops.incremental.drift import DriftParts
from evaljobs.ops.incremental.evaluate import (
    MAX_PARTS,
    IncrementalResult,
    applies,
    definition,
    evaluate_incremental,
    part_length,
)
from evaljobs.ops.incremental.parts import (
    Part,
    PartAggregates,
    PartPlan,
    merge,
    parts_between,
    plan_parts,
    query_ranges,
)
from evaljobs.ops.incremental.stored import (
    DELAY_KIND,
    DRIFT_KIND,
    FINGERPRINTS_KIND,
    HISTORY_KIND,
    KIND,
    ORPHAN_KIND,
    REFERENCE_KIND,
    touch_plan,
)

__all__ = [
    "DELAY_KIND", "DRIFT_KIND", "FINGERPRINTS_KIND", "HISTORY_KIND", "KIND", "MAX_PARTS", "ORPHAN_KIND",
    "REFERENCE_KIND", "DriftParts", "IncrementalResult", "Part", "PartAggregates", "PartPlan", "applies",
    "definition", "evaluate_incremental", "merge", "part_length", "parts_between", "plan_parts", "query_ranges",
    "touch_plan",
]
