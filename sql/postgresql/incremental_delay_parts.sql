-- sql/incremental_delay_parts.sql on PostgreSQL, the same counts with a hash aggregate instead of
-- a sort. As in sql/postgresql/label_delays.sql (see its head comment), the planner estimated one
-- (part, version) group per prediction, so it sorted the whole recomputed span of the look-back
-- on disk before finding one group per part and version (the hourly 7d job's first run at 10M
-- rows: 3.5M rows, external merge ~46 MB per process, for 2016 groups). The subquery's
-- {delay_rows_barrier} (a set-returning function when the labels table declares one row per
-- prediction id, else nothing) keeps it from being pulled up: the join stays parallel and the
-- groups are a Partial HashAggregate (EXPLAIN ANALYZE, bench9_10m, load ~5: 11.5-12.5 s ->
-- 8.7-10.0 s). Comments of the original apply.
WITH {label_delay_rows}
SELECT
    part,
    model_version,
    COUNT(*) AS predictions,
    COUNT(delay_seconds) AS labeled,
    SUM(delay_seconds) AS delay_sum,
    MIN(delay_seconds) AS min_delay,
    {bucket_counts},
    {within_all}
FROM (
    SELECT {part_number} AS part, model_version, delay_seconds{delay_rows_barrier}
    FROM label_delay_rows
) numbered
GROUP BY part, model_version
