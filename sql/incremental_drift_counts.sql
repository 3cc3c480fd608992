-- Categorical drift per incremental part of [:window_start, :window_end): how many of the job's
-- predictions of each version have each value ({current_value}, as in
-- sql/drift_current_predictions.sql; NULL is a value of its own), per part. Summed over parts,
-- they are sql/drift_categorical.sql's counts of a version or of the model in a range
-- (evaljobs/ops/incremental/). At most :row_limit rows: more means too many categories.
SELECT part, model_version, value, COUNT(*) AS n
FROM (
    SELECT {part_number} AS part, model_version, value
    FROM (
        SELECT
            p.{predicted_at} AS predicted_at,
            CAST(p.{model_version} AS {text_type}) AS model_version,
            {current_value} AS value
        FROM {predictions} p
        WHERE {model_window}
    ) window_values
) numbered
GROUP BY part, model_version, value
LIMIT :row_limit
