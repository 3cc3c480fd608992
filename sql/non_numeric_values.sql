-- Score and latency values in the window that are not numbers ('n/a', 'slow'): how many, and
-- the smallest as an example. {score_raw} is the column as stored, {score_expr} the number it
-- holds or NULL (the dialect's number_or_null), so a non-number is non-NULL in one and NULL in
-- the other. Run only for columns that can hold text (SQLite, or a text column).
SELECT
    COUNT(CASE WHEN {score_raw} IS NOT NULL AND {score_expr} IS NULL THEN 1 END) AS score_count,
    MIN(CASE WHEN {score_raw} IS NOT NULL AND {score_expr} IS NULL THEN CAST({score_raw} AS {text_type}) END)
        AS score_example,
    COUNT(CASE WHEN {latency_seconds_raw} IS NOT NULL AND {latency_seconds_expr} IS NULL THEN 1 END)
        AS latency_seconds_count,
    MIN(CASE WHEN {latency_seconds_raw} IS NOT NULL AND {latency_seconds_expr} IS NULL
        THEN CAST({latency_seconds_raw} AS {text_type}) END) AS latency_seconds_example
FROM {predictions} p
WHERE {model_window}
