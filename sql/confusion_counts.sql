-- Confusion cells per model version; label IS NULL rows are predictions without a label yet,
-- so the same result gives window and labelled counts. The score sums give log loss and
-- Brier score per version (probabilities clipped to [:eps, 1 - :eps] for the logarithms,
-- as scikit-learn does); min/max let the caller refuse scores outside [0, 1].
WITH {window_rows}
SELECT
    model_version,
    label,
    predicted_label,
    COUNT(*) AS predictions,
    COUNT(CASE WHEN label IS NOT NULL THEN score END) AS scored,
    SUM(CASE WHEN label IS NOT NULL THEN LN(CASE WHEN score < :eps THEN :eps WHEN score > 1 - :eps THEN 1 - :eps ELSE score END) END) AS sum_log_score,
    SUM(CASE WHEN label IS NOT NULL THEN LN(1 - CASE WHEN score < :eps THEN :eps WHEN score > 1 - :eps THEN 1 - :eps ELSE score END) END) AS sum_log_one_minus_score,
    -- PostgreSQL raises on float underflow, so squares below 1e-300 are summed as the 0 they round to.
    SUM(CASE WHEN label IS NOT NULL THEN CASE WHEN ABS(score) < 1e-150 THEN 0.0 ELSE score * score END END) AS sum_score_squared,
    SUM(CASE WHEN label IS NOT NULL THEN (1 - score) * (1 - score) END) AS sum_one_minus_score_squared,
    MIN(score) AS min_score,
    MAX(score) AS max_score
FROM window_rows
GROUP BY model_version, label, predicted_label
