-- The window's part of drift_numeric_binned.sql alone: its fine histogram per version, binned
-- around a stored reference's centre (:center). Used when a baseline or table reference's fine
-- bins are stored in the results store and still hold (evaljobs/ops/incremental/): the
-- reference is then not read at all, and the window's bins are exactly those the one-pass
-- query would give (the same fragment, the same bound values).
WITH {current_rows},
both_samples AS (
    SELECT 0 AS is_reference, model_version, value
    FROM current_rows
),
{fine_bins}
