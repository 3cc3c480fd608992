-- Numeric drift summaries of one value (a feature column or the score) for every version in
-- the window against the reference, in one pass; only per-bin totals leave the database.
--
-- * The reference is grouped by distinct value once (NULL is a group of its own: its count).
-- * Quantile bin edges (:bins bins): for k = 1 .. :bins - 1, the smallest reference value whose
--   cumulative count reaches ceil(k * n / :bins) (numpy's 'inverted_cdf' quantile of k / :bins),
--   duplicates merged. Bins are right-closed, the outer ones open: (-inf, e1], (e1, e2], ...,
--   (e_last, +inf); a value's bin is the number of edges below it.
-- * Over the union of the reference's and the version's distinct values, the cumulative counts
--   R(x) and C(x) give, per version, the exact two-sample KS statistic
--   max |R(x) / n - C(x) / m| (returned as the integer max |R(x) * m - C(x) * n|) and the exact
--   1-Wasserstein distance, the area between the two ECDFs (returned multiplied by n * m).
--   Both are returned per bin (max and sum); the caller takes the max and the sum over bins.
-- * The reference's mean and sum of squared deviations give the standard deviation that
--   normalises the Wasserstein distance. Every row repeats its version's and the reference's
--   totals, so one small result carries everything.
WITH {current_rows},
{reference_rows},
reference_values AS (
    SELECT value, COUNT(*) AS n
    FROM reference_rows
    GROUP BY value
),
reference_cumulative AS (
    SELECT
        value,
        n,
        CAST(SUM(n) OVER (ORDER BY value ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS at_or_below,
        CAST(SUM(n) OVER () AS BIGINT) AS total
    FROM reference_values
    WHERE value IS NOT NULL
),
reference_mean AS (
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
        SUM(r.n * (r.value - m.mean) * (r.value - m.mean)) AS reference_sum_squares
    FROM reference_values r
    CROSS JOIN reference_mean m
),
edges AS (
    SELECT value
    FROM reference_cumulative
    WHERE (at_or_below * CAST(:bins AS BIGINT)) / total > ((at_or_below - n) * CAST(:bins AS BIGINT)) / total
      AND ((at_or_below - n) * CAST(:bins AS BIGINT)) / total < CAST(:bins AS BIGINT) - 1
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
        CAST(SUM(CASE WHEN value IS NULL THEN n ELSE 0 END) AS BIGINT) AS current_nulls
    FROM current_values
    GROUP BY model_version
),
paired AS (
    -- Per version, every distinct non-NULL value of the reference or of the version, with both counts.
    SELECT model_version, value, SUM(reference_n) AS reference_n, SUM(current_n) AS current_n
    FROM (
        SELECT v.model_version, r.value, r.n AS reference_n, 0 AS current_n
        FROM version_totals v
        CROSS JOIN reference_cumulative r
        UNION ALL
        SELECT model_version, value, 0 AS reference_n, n AS current_n
        FROM current_values
        WHERE value IS NOT NULL
    ) both_samples
    GROUP BY model_version, value
),
cumulative AS (
    SELECT
        p.model_version,
        p.value,
        p.reference_n,
        p.current_n,
        CASE WHEN e.value IS NULL THEN 0 ELSE 1 END AS is_edge,
        CAST(SUM(p.reference_n) OVER running AS BIGINT) AS reference_at_or_below,
        CAST(SUM(p.current_n) OVER running AS BIGINT) AS current_at_or_below,
        CAST(SUM(CASE WHEN e.value IS NULL THEN 0 ELSE 1 END) OVER running AS BIGINT) AS edges_at_or_below,
        LEAD(p.value) OVER (PARTITION BY p.model_version ORDER BY p.value) AS next_value
    FROM paired p
    LEFT JOIN edges e ON e.value = p.value
    WINDOW running AS (PARTITION BY p.model_version ORDER BY p.value ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
bins AS (
    SELECT
        c.model_version,
        c.edges_at_or_below - c.is_edge AS bin,
        SUM(c.reference_n) AS reference_count,
        SUM(c.current_n) AS current_count,
        MAX(CASE WHEN c.is_edge = 1 THEN c.value END) AS upper_edge,
        MAX(ABS(c.reference_at_or_below * v.current_values - c.current_at_or_below * s.reference_values)) AS max_gap,
        SUM((c.next_value - c.value)
            * ABS(c.reference_at_or_below * v.current_values - c.current_at_or_below * s.reference_values)) AS area
    FROM cumulative c
    JOIN version_totals v ON v.model_version = c.model_version
    CROSS JOIN reference_stats s
    GROUP BY c.model_version, c.edges_at_or_below - c.is_edge
)
SELECT
    v.model_version,
    b.bin,
    b.reference_count,
    b.current_count,
    b.upper_edge,
    b.max_gap,
    b.area,
    v.current_values,
    v.current_nulls,
    s.reference_values,
    s.reference_nulls,
    s.reference_distinct,
    s.reference_min,
    s.reference_mean,
    s.reference_sum_squares
FROM version_totals v
CROSS JOIN reference_stats s
LEFT JOIN bins b ON b.model_version = v.model_version
ORDER BY v.model_version, b.bin
