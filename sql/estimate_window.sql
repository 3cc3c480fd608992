-- Estimated performance (CBPE), the one pass over the recent window: per version, score bin
-- and predicted class (positive or not), the predictions and the sums of their scores. The
-- recent window [:recent_start, :recent_end) has no labels yet. The same cells of the job's
-- labelled window ({window_rows}: [:window_start, :window_end), labels as of :labels_as_of),
-- labelled predictions only, with how many were positive, compare the estimate with what
-- happened (calibration drift). bin is NULL for predictions without a score.
WITH {window_rows},
recent AS (
    SELECT
        CAST(p.{model_version} AS {text_type}) AS model_version,
        {predicted_label_text} AS predicted_label,
        CAST(NULL AS {text_type}) AS label,
        {score_expr} AS score
    FROM {predictions} p
    WHERE {model_recent_window}
),
both_windows AS (
    SELECT 'recent' AS part, model_version, predicted_label, label, score FROM recent
    UNION ALL
    SELECT 'labelled' AS part, model_version, predicted_label, label, score FROM window_rows
    WHERE label IS NOT NULL
),
binned AS (
    SELECT
        part,
        model_version,
        {score_bin} AS bin,
        CASE WHEN predicted_label = :positive_label THEN 1 ELSE 0 END AS predicted_positive,
        CASE WHEN label = :positive_label THEN 1 ELSE 0 END AS positive,
        score
    FROM both_windows
)
SELECT
    part,
    model_version,
    bin,
    predicted_positive,
    {score_cell_sums}
FROM binned
GROUP BY part, model_version, bin, predicted_positive
