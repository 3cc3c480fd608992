-- Regression on an engine whose CAST turns text into a number silently (SQLite: CAST('n/a' AS
-- REAL) is 0; the other engines' casts fail the query instead): how many of the window's
-- predicted values, and of their latest labels, are not numbers, with the smallest as an
-- example (evaljobs/quality/regression.py refuses the window then). The task rows carry the
-- raw values; {prediction_number} and {label_number} are the dialect's number_or_null of them.
WITH {task_rows}
SELECT
    COUNT(CASE WHEN prediction IS NOT NULL AND {prediction_number} IS NULL THEN 1 END) AS prediction_count,
    MIN(CASE WHEN prediction IS NOT NULL AND {prediction_number} IS NULL THEN CAST(prediction AS {text_type}) END)
        AS prediction_example,
    COUNT(CASE WHEN label IS NOT NULL AND {label_number} IS NULL THEN 1 END) AS label_count,
    MIN(CASE WHEN label IS NOT NULL AND {label_number} IS NULL THEN CAST(label AS {text_type}) END) AS label_example
FROM task_rows
