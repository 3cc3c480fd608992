-- The label_delay that reaches a target share of the labels that arrive (evaljobs run --explain):
-- per version, the smallest observed delay d with at least :target_ppm / 1e6 of the labelled
-- predictions of the label-delay population delayed by at most d (the exact quantile, in
-- integers so that 0.9 x 10 is 9, not 9.000000000000002), and how many predictions the
-- suggested and the configured (:label_delay_seconds) delays cover.
WITH {label_delay_rows},
ranked AS (
    SELECT
        model_version,
        delay_seconds,
        ROW_NUMBER() OVER (PARTITION BY model_version ORDER BY delay_seconds) AS position,
        COUNT(*) OVER (PARTITION BY model_version) AS labeled
    FROM label_delay_rows
    WHERE delay_seconds IS NOT NULL
),
suggestions AS (
    SELECT model_version, MIN(CASE WHEN position * 1000000 >= :target_ppm * labeled THEN delay_seconds END) AS suggested_seconds
    FROM ranked
    GROUP BY model_version
)
SELECT
    d.model_version,
    COUNT(*) AS predictions,
    COUNT(d.delay_seconds) AS labeled,
    s.suggested_seconds,
    COUNT(CASE WHEN d.delay_seconds <= s.suggested_seconds THEN 1 END) AS within_suggested,
    COUNT(CASE WHEN d.delay_seconds <= :label_delay_seconds THEN 1 END) AS within_configured
FROM label_delay_rows d
LEFT JOIN suggestions s ON s.model_version = d.model_version
GROUP BY d.model_version, s.suggested_seconds
