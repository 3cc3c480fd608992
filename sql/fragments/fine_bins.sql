-- Fragment (drift): the fine histogram of drift_numeric_binned.sql (read its header) over a
-- both_samples CTE (is_reference, model_version, value) of the including query: shared with
-- drift_numeric_binned_current.sql, so that the window's bins are the same whether the
-- reference is read with them or comes from its stored summary (evaljobs/ops/incremental/).
indexed AS (
    -- Each value's state and bin are GROUP BY keys, computed once per row; the distance from
    -- the centre is written out where it is used (engines substitute a derived column into
    -- every expression that names it, so it stays a bare subtraction: a CASE here was evaluated
    -- ~10 times per row). Only state 0 needs finite sums and extremes: the groups of states 1
    -- and 2 may carry NULL, NaN or infinite ones, which the caller never reads.
    SELECT
        is_reference,
        model_version,
        value,
        value - :center AS d,
        CASE WHEN value IS NULL THEN 1 WHEN value - value = 0 THEN 0 ELSE 2 END AS state,
        CASE WHEN value - value = 0 THEN  -- LN sees finite distances only
            CASE
                WHEN ABS(value - :center) < :min_magnitude THEN 0
                WHEN value - :center > 0 THEN 1 + CAST((LN(value - :center) - :ln_min_magnitude) * :scale AS BIGINT)
                ELSE -1 - CAST((LN(-(value - :center)) - :ln_min_magnitude) * :scale AS BIGINT)
            END
        END AS bin
    FROM both_samples
)
-- {sample_columns}/{sample_keys}: "is_reference, model_version" for both; for a reference read
-- in the window (drift_reference_in_window.sql: every row is the window's), "0 AS is_reference,
-- model_version" and "model_version". A key fewer is not only a hash fewer: PostgreSQL 15
-- estimates the UNION ALL's groups by multiplying its keys' defaults, 1M groups for three
-- (sizing each worker's hash table at ~50 MB for ~13,000 bins) and 40,000 for two; the
-- statement took 7.1-8.2 s against 8.4-10.3 s at 10M, alternated, at load 6-8.
SELECT
    {sample_columns},
    state,
    bin,
    COUNT(*) AS n,
    MIN(value) AS smallest,
    MAX(value) AS largest,
    SUM(d) AS sum_values,
    SUM(CASE WHEN ABS(d) < 1e-150 THEN 0.0 WHEN ABS(d) > 1e150 THEN NULL ELSE d * d END) AS sum_squares
FROM indexed
GROUP BY {sample_keys}, state, bin
