-- sql/label_delay_suggestion.sql on PostgreSQL: the same numbers without ranking every labelled
-- prediction. The original numbers the population's rows per version in delay order (a sort of
-- every labelled row, on disk at 10M rows, and a per-version COUNT(*) OVER that spilled its
-- partitions) and joins the rows again to count them. Here the rows are grouped by version and
-- delay in whole minutes, rounded up (hashed: {delay_rows_barrier}, as in
-- sql/postgresql/label_delays.sql), which gives the counts and, from the minutes' running
-- totals, the minute that holds each version's quantile; only that minute's rows are grouped
-- by their exact delay to find it. Exact as the original: the labelled row at position P in
-- delay order has the smallest delay d whose count of delays <= d reaches P, and
-- CEIL(d / 60) orders the delays as d does.
-- EXPLAIN ANALYZE (work_mem 4 MB, load 3-8): the 10M hourly look-back with unique labels
-- 30.1 -> 10.2 s; labels_log (rows grouped per prediction id, kept MATERIALIZED) 10M 62.5 / 70.7
-- -> 41.1 / 42.4 s. On the bench data every delay is 1 h, so the quantile minute holds every
-- labelled row and the second read still sorts them; with delays spread over minutes it is one
-- minute's rows.
WITH {label_delay_rows},
delay_rows AS {delay_rows_materialization} (
    -- Read twice: computed once when the rows come from a GROUP BY per prediction id, else each
    -- read is a parallel join (sql/fragments/delay_rows_materialization*.sql).
    SELECT model_version, delay_seconds{delay_rows_barrier}
    FROM label_delay_rows
),
delay_minutes AS (
    SELECT
        model_version,
        CEIL(delay_seconds / 60) AS delay_minute,
        COUNT(*) AS predictions,
        COUNT(delay_seconds) AS labeled,
        COUNT(CASE WHEN delay_seconds <= :label_delay_seconds THEN 1 END) AS within_configured
    FROM delay_rows
    GROUP BY model_version, CEIL(delay_seconds / 60)
),
running_minutes AS (
    SELECT
        model_version,
        delay_minute,
        SUM(labeled) OVER (PARTITION BY model_version ORDER BY delay_minute
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - labeled AS before,
        SUM(labeled) OVER (PARTITION BY model_version ORDER BY delay_minute
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS through,
        SUM(labeled) OVER (PARTITION BY model_version) AS labeled
    FROM delay_minutes
    WHERE delay_minute IS NOT NULL
),
quantile_minutes AS (
    -- Per version, the first minute through which :target_ppm / 1e6 of the labelled are reached.
    SELECT model_version, delay_minute, before, labeled
    FROM (
        SELECT
            model_version, delay_minute, before, labeled,
            ROW_NUMBER() OVER (PARTITION BY model_version ORDER BY delay_minute) AS position
        FROM running_minutes
        WHERE through * 1000000 >= :target_ppm * labeled
    ) reached
    WHERE position = 1
),
minute_delays AS (
    SELECT d.model_version, d.delay_seconds, COUNT(*) AS labeled
    FROM delay_rows d
    JOIN quantile_minutes q
      ON q.model_version = d.model_version
     AND CEIL(d.delay_seconds / 60) = q.delay_minute
    GROUP BY d.model_version, d.delay_seconds
),
suggestions AS (
    SELECT
        model_version,
        MIN(CASE WHEN (before + through) * 1000000 >= :target_ppm * version_labeled THEN delay_seconds END)
            AS suggested_seconds
    FROM (
        SELECT
            m.model_version, m.delay_seconds, q.before, q.labeled AS version_labeled,
            SUM(m.labeled) OVER (PARTITION BY m.model_version ORDER BY m.delay_seconds
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS through
        FROM minute_delays m
        JOIN quantile_minutes q ON q.model_version = m.model_version
    ) running_delays
    GROUP BY model_version
),
covered AS (
    -- Per version, the labelled predictions delayed by at most the suggestion: those of earlier
    -- minutes and those of its minute up to it.
    SELECT q.model_version, s.suggested_seconds, q.before + SUM(CASE WHEN m.delay_seconds <= s.suggested_seconds
                                                                      THEN m.labeled ELSE 0 END) AS within_suggested
    FROM quantile_minutes q
    JOIN suggestions s ON s.model_version = q.model_version
    JOIN minute_delays m ON m.model_version = q.model_version
    GROUP BY q.model_version, s.suggested_seconds, q.before
)
SELECT
    v.model_version,
    v.predictions,
    v.labeled,
    c.suggested_seconds,
    COALESCE(c.within_suggested, 0) AS within_suggested,
    v.within_configured
FROM (
    SELECT
        model_version,
        SUM(predictions) AS predictions,
        SUM(labeled) AS labeled,
        SUM(within_configured) AS within_configured
    FROM delay_minutes
    GROUP BY model_version
) v
LEFT JOIN covered c ON c.model_version = v.model_version
