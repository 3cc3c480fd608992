-- Fragment: the sums regression metrics are made of (evaljobs/quality/regression.py), over
-- rows with a numeric prediction and label (NULL when the label has not arrived); included in
-- the SELECT list of a GROUP BY (sql/regression_aggregates.sql, sql/segment_aggregates.sql).
-- error = prediction - label. Squares below 1e-300 are summed as the 0 they round to
-- (PostgreSQL raises on float underflow). VAR_POP of the labels gives R2 without the
-- cancellation of sum(y^2) - sum(y)^2/n. MAPE skips zero labels (counted) and divides by
-- max(|label|, :eps), as scikit-learn does.
COUNT(*) AS predictions,
        COUNT(CASE WHEN prediction IS NULL THEN 1 END) AS missing_predictions,
        COUNT(prediction - label) AS labeled,
        SUM(prediction - label) AS sum_error,
        SUM(ABS(prediction - label)) AS sum_absolute_error,
        SUM(CASE WHEN ABS(prediction - label) < 1e-150 THEN 0.0
                 ELSE (prediction - label) * (prediction - label) END) AS sum_squared_error,
        VAR_POP(CASE WHEN prediction IS NOT NULL THEN label END) AS label_variance,
        COUNT(CASE WHEN prediction IS NOT NULL AND label = 0 THEN 1 END) AS zero_labels,
        SUM(CASE WHEN prediction IS NOT NULL AND label <> 0
                 THEN ABS(prediction - label) / CASE WHEN ABS(label) < :eps THEN :eps ELSE ABS(label) END END)
            AS sum_absolute_percentage_error,
        MIN(prediction - label) AS min_error,
        MAX(prediction - label) AS max_error
