-- How late labels arrive, per version, over the label-delay population (sql/fragments/label_delay_rows.sql):
-- the predictions, the labelled ones, the sum and range of their delays, one CUMULATIVE histogram
-- count per bound ({bucket_counts}: delay_seconds <= :le_0, ...), and for each multiple k of
-- label_delay ({within_counts}: due_k, within_k) how many predictions are at least k x label_delay
-- old (predicted_at < :due_k) and how many of those had a label within k x label_delay
-- (delay_seconds <= :delay_k).
WITH {label_delay_rows}
SELECT
    model_version,
    COUNT(*) AS predictions,
    COUNT(delay_seconds) AS labeled,
    SUM(delay_seconds) AS delay_sum,
    MIN(delay_seconds) AS min_delay,
    {bucket_counts},
    {within_counts}
FROM label_delay_rows
GROUP BY model_version
