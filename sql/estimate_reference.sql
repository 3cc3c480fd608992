-- Estimated performance (CBPE): the calibration counts of the labelled reference. Per version
-- (NULL for a table reference) and score bin: labelled predictions, how many were positive,
-- and the sum of their scores (for the expected calibration error). A few rows per bin.
WITH {reference_rows},
binned AS (
    SELECT
        model_version,
        {score_bin} AS bin,
        CASE WHEN label = :positive_label THEN 1 ELSE 0 END AS positive,
        score
    FROM reference_rows
    WHERE score IS NOT NULL AND label IS NOT NULL
)
SELECT
    model_version,
    bin,
    {score_cell_sums}
FROM binned
GROUP BY model_version, bin
