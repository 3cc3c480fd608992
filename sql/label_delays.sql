-- How late labels arrive, per version, over the label-delay population (sql/fragments/label_delay_rows.sql):
-- the predictions, the labelled ones, the sum and range of their delays, one CUMULATIVE histogram
-- count per bound ({bucket_counts}: delay <= :le_0, ...), and for each multiple k of label_delay
-- ({within_counts} and {within_sums}: due_k, within_k) how many predictions are at least
-- k x label_delay old (predicted_at < :due_k) and how many of those had a label within
-- k x label_delay (delay_seconds <= :delay_k).
--
-- Two steps, so that each row's delay is compared a few times instead of once per bound (the
-- engines evaluate the delay expression anew in every aggregate that names it): the rows are
-- grouped by version and delay in whole minutes, rounded up (delay_minute; NULL when no label
-- has arrived; at most one group per minute of delay that occurs), and the bounds, all whole
-- minutes (evaljobs/quality/label_delay.py checks), count those groups: a delay d is at most a
-- bound of b seconds exactly when CEIL(d / 60) * 60 <= b. Sums, minima and counts of the groups
-- are those of their rows.
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
    FROM label_delay_rows
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
