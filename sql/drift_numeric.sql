-- Numeric drift summaries of one value (a feature column or the score) for every version in
-- the window against the reference, in one pass; only one row per bin and version leaves
-- the database.
--
-- * The reference and each version are grouped by distinct value (NULL is a group of its
--   own: its count is the NULL count). The reference's groups are repeated for each version,
--   and one sort by (version, value) then gives, with a RANGE frame (equal values are peers
--   and see the same sums), the cumulative counts R(x) of the reference (n values) and C(x)
--   of the version (m values) at every distinct value x of either sample.
-- * max |R(x) * m - C(x) * n| is n * m times the exact two-sample KS statistic, and
--   sum (x_next - x) * |R(x) * m - C(x) * n| is n * m times the exact 1-Wasserstein distance
--   (the area between the two ECDFs).
-- * Quantile bins (:bins of them): with t_k = ceil(k * n / :bins), bin k holds the values x
--   with t_k <= R(x-) < t_(k+1), where R(x-) counts reference values below x. That is the
--   right-closed bin (q_k, q_(k+1)] between numpy's 'inverted_cdf' quantiles q_k of k / :bins,
--   with open outer bins; bins no value falls in (including those between equal quantiles)
--   are absent. Bins follow the value order, so a second level of window functions over the
--   same order (no new sort) keeps running totals, and the last row of each bin carries:
--   R and C at the bin's end (the caller takes differences for the bin counts), the bin's
--   largest value (its upper edge, as quantiles are reference values), and the running
--   maximum gap and area (the caller takes the last bin's).
-- * The reference's mean and sum of squared deviations give the standard deviation that
--   normalises the Wasserstein distance. Every row repeats its version's and the reference's
--   totals, so one small result carries everything.
-- * NaN and +/-Infinity (PostgreSQL stores them, SQLite keeps infinities) have no place on
--   the number line (PostgreSQL sorts NaN above every number), so the statistics above would
--   be silently wrong; they are counted (x - x is 0 for every finite x, NaN on PostgreSQL and
--   NULL on SQLite otherwise) and the caller refuses the comparison. The count is over the
--   grouped distinct values, so it costs no extra pass.
WITH {current_rows},
{reference_rows},
reference_values AS (
    SELECT value, COUNT(*) AS n
    FROM reference_rows
    GROUP BY value
),
reference_mean {materialized} (  -- one row; without the hint PostgreSQL may recompute it per value
    SELECT SUM(n * value) / SUM(n) AS mean
    FROM reference_values
    WHERE value IS NOT NULL
),
reference_stats AS (
    SELECT
        CAST(COALESCE(SUM(CASE WHEN r.value IS NOT NULL THEN r.n END), 0) AS BIGINT) AS reference_values,
        CAST(COALESCE(SUM(CASE WHEN r.value IS NULL THEN r.n END), 0) AS BIGINT) AS reference_nulls,
        COUNT(r.value) AS reference_distinct,
        MIN(r.value) AS reference_min,
        MAX(m.mean) AS reference_mean,
        SUM(r.n * (r.value - m.mean) * (r.value - m.mean)) AS reference_sum_squares,
        CAST(COALESCE(SUM(CASE WHEN r.value IS NULL OR r.value - r.value = 0 THEN 0 ELSE r.n END), 0) AS BIGINT)
            AS reference_non_finite
    FROM reference_values r
    CROSS JOIN reference_mean m
),
current_values AS (
    SELECT model_version, value, COUNT(*) AS n
    FROM current_rows
    GROUP BY model_version, value
),
version_totals AS (
    SELECT
        model_version,
        CAST(SUM(CASE WHEN value IS NOT NULL THEN n ELSE 0 END) AS BIGINT) AS current_values,
        CAST(SUM(CASE WHEN value IS NULL THEN n ELSE 0 END) AS BIGINT) AS current_nulls,
        CAST(SUM(CASE WHEN value IS NULL OR value - value = 0 THEN 0 ELSE n END) AS BIGINT) AS current_non_finite
    FROM current_values
    GROUP BY model_version
),
both_samples AS (
    SELECT v.model_version, v.current_values AS m, r.value, r.n AS reference_n, 0 AS current_n
    FROM version_totals v
    CROSS JOIN reference_values r
    WHERE r.value IS NOT NULL
    UNION ALL
    SELECT c.model_version, v.current_values AS m, c.value, 0 AS reference_n, c.n AS current_n
    FROM current_values c
    JOIN version_totals v ON v.model_version = c.model_version
    WHERE c.value IS NOT NULL
),
cumulative AS (
    SELECT
        model_version,
        m,
        value,
        CAST(SUM(reference_n) OVER up_to AS BIGINT) AS reference_at_or_below,
        CAST(SUM(current_n) OVER up_to AS BIGINT) AS current_at_or_below,
        CAST(SUM(reference_n) OVER same_value AS BIGINT) AS reference_at,
        LEAD(value) OVER up_to AS next_value
    FROM both_samples
    -- No explicit frame: with ORDER BY the default is RANGE BETWEEN UNBOUNDED PRECEDING AND
    -- CURRENT ROW (equal values are peers), and LEAD may share the window (Spark refuses LEAD
    -- over a window with an explicit frame), so one sort serves them all on every engine.
    WINDOW
        up_to AS (PARTITION BY model_version ORDER BY value),
        same_value AS (PARTITION BY model_version, value)
),
positioned AS (
    SELECT
        c.model_version,
        c.value,
        c.reference_at_or_below,
        c.current_at_or_below,
        CASE WHEN ((c.reference_at_or_below - c.reference_at) * CAST(:bins AS BIGINT)) {int_div} NULLIF(s.reference_values, 0)
                  > CAST(:bins AS BIGINT) - 1
             THEN CAST(:bins AS BIGINT) - 1
             ELSE ((c.reference_at_or_below - c.reference_at) * CAST(:bins AS BIGINT)) {int_div} NULLIF(s.reference_values, 0)
        END AS bin,
        ABS(c.reference_at_or_below * c.m - c.current_at_or_below * s.reference_values) AS gap,
        c.next_value
    FROM cumulative c
    CROSS JOIN reference_stats s
),
running AS (
    SELECT
        model_version,
        value,
        bin,
        reference_at_or_below,
        current_at_or_below,
        MAX(gap) OVER so_far AS max_gap,
        SUM((next_value - value) * gap) OVER so_far AS area,
        LEAD(bin) OVER so_far AS next_bin
    FROM positioned
    -- The default (RANGE) frame again: a reference and a current row of equal value are peers,
    -- so a bin's last row carries both rows' gap and area whichever of them sorts last.
    WINDOW so_far AS (PARTITION BY model_version ORDER BY value)
),
bin_ends AS (
    SELECT model_version, bin, value, reference_at_or_below, current_at_or_below, max_gap, area
    FROM running
    WHERE next_bin IS NULL OR next_bin <> bin
)
SELECT
    v.model_version,
    b.bin,
    b.value AS largest_value,
    b.reference_at_or_below,
    b.current_at_or_below,
    b.max_gap,
    b.area,
    v.current_values,
    v.current_nulls,
    v.current_non_finite,
    s.reference_values,
    s.reference_nulls,
    s.reference_distinct,
    s.reference_min,
    s.reference_mean,
    s.reference_sum_squares,
    s.reference_non_finite
FROM version_totals v
CROSS JOIN reference_stats s
LEFT JOIN bin_ends b ON b.model_version = v.model_version
ORDER BY v.model_version, b.bin
