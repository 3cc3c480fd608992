-- Everything a regression job needs for one window, in one statement (evaljobs/quality/regression.py).
-- One row per model_version with predictions in the window: its predictions, labelled predictions
-- and the sums the metrics are made of (sql/fragments/regression_sums.sql; VAR_POP is SQLite's
-- from evaljobs/db/dialects.py). {bucket_counts} are the cumulative signed-error histogram counts (bounds
-- bound as :le_0, :le_1, ...). Each row also carries the version's predictions up to the
-- window's end and the job's orphan labels; an empty window gives one row with no version.
WITH {task_rows},
errors AS (
    SELECT model_version, prediction, label, prediction - label AS error
    FROM task_rows
),
sums AS (
    SELECT
        model_version,
        {regression_sums},
        {bucket_counts}
    FROM errors
    GROUP BY model_version
),
window_counts AS (  -- the window's predictions per version, for {version_totals}
    SELECT model_version, predictions FROM sums
),
{version_totals},
{orphan_labels}
SELECT s.*, t.predictions AS predictions_total, o.predictions AS orphan_labels
FROM orphans o
LEFT JOIN sums s ON 1 = 1
LEFT JOIN totals t ON t.model_version = s.model_version
