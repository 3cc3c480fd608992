-- Estimated performance (CBPE) of a multiclass job: the one-vs-rest calibration counts of the
-- labelled reference. Per version (NULL for a table reference), class k and bin of class k's
-- probability: labelled predictions, how many were of class k, and the sum of the
-- probabilities (for the expected calibration error). Predictions with any class probability
-- NULL are left out. The generated slots are those of estimate_window_multiclass.sql.
WITH {reference_rows},
classes AS (
    {class_rows}
),
per_class AS (
    SELECT
        w.model_version,
        c.k,
        CASE WHEN w.label = c.class_label THEN 1 ELSE 0 END AS positive,
        {class_score_pick} AS score
    FROM reference_rows w
    CROSS JOIN classes c
    WHERE w.label IS NOT NULL AND NOT ({any_score_null})
),
binned AS (
    SELECT model_version, k, {score_bin} AS bin, positive, score
    FROM per_class
)
SELECT
    model_version,
    k,
    bin,
    {score_cell_sums}
FROM binned
GROUP BY model_version, k, bin
