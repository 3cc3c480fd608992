-- The window's part of drift_numeric_binned.sql alone: its fine histogram per version, binned
-- around a stored reference's centre (:center). Used when a baseline or table reference's fine
-- bins are stored in the results store and still hold (evaljobs/ops/incremental/): the
-- reference is then not read at all, and the window's bins are exactly those the one-pass
-- query would give (the same fragment, the same bound values). Every row is a window row, so
-- the bins are grouped by version alone (evaljobs/drift/queries.py passes that as the
-- fragment's sample keys). The empty branch is there for PostgreSQL 15's planner, as in
-- drift_reference_in_window.sql: over the bare window it expected a group per distinct value
-- (10M at 10M rows) and aggregated serially; over the UNION ALL it expects 40,000 and
-- aggregates in parallel (EXPLAIN on the 10M-row bench data).
WITH {current_rows},
both_samples AS (
    SELECT 0 AS is_reference, model_version, value
    FROM current_rows
    UNION ALL
    SELECT 0, CAST(NULL AS {text_type}), CAST(NULL AS {float_type})
    FROM {predictions} p
    WHERE 1 = 0
),
{fine_bins}
