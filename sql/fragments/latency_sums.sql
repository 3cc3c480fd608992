-- Fragment: the latency aggregates of a GROUP BY over rows with `latency_seconds`, included in
-- the SELECT list of sql/latency_histogram.sql and sql/incremental_part_latency.sql: the count
-- and sum of latency_seconds, its range, how many rows had none (NULL), and one CUMULATIVE bucket
-- count per upper bound (`le`, inclusive, as Prometheus counts). {bucket_counts} is a slot the
-- caller fills with evaljobs/quality/latency.py's bucket_columns:
--   COUNT(CASE WHEN latency_seconds <= :le_0 THEN 1 END) AS le_0, ... (parameter names only;
-- the bounds themselves are bound values).
COUNT(*) AS predictions,
    COUNT(latency_seconds) AS observed,
    SUM(latency_seconds) AS latency_sum,
    MIN(latency_seconds) AS min_latency,
    MAX(latency_seconds) AS max_latency,
    {bucket_counts}
