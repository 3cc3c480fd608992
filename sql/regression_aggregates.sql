-- Everything a regression job needs for one window, in one statement (evaljobs/quality/regression.py).
-- One row per model_version with predictions in the window: its predictions, labelled predictions
-- and the sums the metrics are made of. error = prediction - label (a positive mean error is
-- over-prediction). MSE sums squares (below 1e-300 summed as the 0 they round to: PostgreSQL
-- raises on float underflow). R2 needs the labels' variance: VAR_POP, a stable one-pass
-- algorithm on every engine (SQLite gets it from evaljobs/db/engine.py), avoids the cancellation
-- of sum(y^2) - sum(y)^2/n. MAPE skips zero labels and counts them; like scikit-learn it divides
-- by max(|label|, :eps). {bucket_counts} are the cumulative signed-error histogram counts (bounds
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
        COUNT(*) AS predictions,
        COUNT(CASE WHEN prediction IS NULL THEN 1 END) AS missing_predictions,
        COUNT(error) AS labeled,
        SUM(error) AS sum_error,
        SUM(ABS(error)) AS sum_absolute_error,
        SUM(CASE WHEN ABS(error) < 1e-150 THEN 0.0 ELSE error * error END) AS sum_squared_error,
        VAR_POP(CASE WHEN error IS NOT NULL THEN label END) AS label_variance,
        COUNT(CASE WHEN error IS NOT NULL AND label = 0 THEN 1 END) AS zero_labels,
        SUM(CASE WHEN label <> 0 THEN ABS(error) / CASE WHEN ABS(label) < :eps THEN :eps ELSE ABS(label) END END)
            AS sum_absolute_percentage_error,
        MIN(error) AS min_error,
        MAX(error) AS max_error,
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
