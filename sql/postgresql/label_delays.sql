-- sql/label_delays.sql on PostgreSQL, the same counts with a hash aggregate instead of a sort.
-- There the planner estimated one (version, delay minute) group per prediction (it multiplies the
-- distinct counts of labeled_at and predicted_at), so it sorted the whole look-back population on
-- disk for the first GROUP BY (external merge, ~380 MB at 10M rows) before finding ~2 groups per
-- version. Planner settings did not help: a larger work_mem gave a serial plan, and an OFFSET 0
-- subquery (sql/postgresql/incremental_orphan_parts.sql) loses the parallel join. A subquery with
-- a set-returning function in its select list stays parallel and gets a Partial HashAggregate
-- (EXPLAIN ANALYZE, 10M rows, work_mem 4 MB: 7.0 s -> 5.8 s): {delay_rows_barrier} is that
-- function (sql/fragments/delay_rows_barrier_unique.sql) when the labels table declares one row
-- per prediction id. Otherwise it is empty and the query is the original: its rows come from a
-- GROUP BY per prediction id (sql/fragments/label_delay_rows.sql), which is already opaque to
-- the estimate, so the planner hashes anyway, and the function only added ~1.2 s of serial
-- ProjectSet at 10M rows (labels_log: 11.3 s -> 12.5 s). Comments of the original apply.
WITH {label_delay_rows},
delay_minutes AS (
    SELECT
        model_version,
        CEIL(delay_seconds / 60) AS delay_minute,
        COUNT(*) AS predictions,
        COUNT(delay_seconds) AS labeled,
        SUM(delay_seconds) AS delay_sum,
        MIN(delay_seconds) AS min_delay,
        {within_counts}
    FROM (
        -- {delay_rows_barrier}: see the head of this file.
        SELECT model_version, predicted_at, delay_seconds{delay_rows_barrier}
        FROM label_delay_rows
    ) delay_rows
    GROUP BY model_version, CEIL(delay_seconds / 60)
)
SELECT
    model_version,
    SUM(predictions) AS predictions,
    SUM(labeled) AS labeled,
    SUM(delay_sum) AS delay_sum,
    MIN(min_delay) AS min_delay,
    {bucket_counts},
    {within_sums}
FROM delay_minutes
GROUP BY model_version
