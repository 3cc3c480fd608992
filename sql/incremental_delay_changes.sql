-- What labels that arrived in [:changed_from, :labels_as_of) add to stored label-delay parts
-- (evaljobs/ops/incremental/): the predictions of the look-back [:lookback_start, :window_end)
-- whose FIRST label arrived then (they had none before :changed_from, so they counted as
-- unlabelled), per part and version: how many, the sum and range of their delays, the cumulative
-- histogram and the within-k counts, as in sql/incremental_delay_parts.sql. Predictions whose
-- first label was earlier keep their delay. Reads only the predictions those labels join.
WITH changed AS (
    SELECT DISTINCT l.{label_prediction_id} AS prediction_id
    FROM {labels} l
    WHERE l.{labeled_at} >= :changed_from
      AND l.{labeled_at} < :labels_as_of
),
first_labels AS (
    SELECT
        CAST(p.{model_version} AS {text_type}) AS model_version,
        p.{predicted_at} AS predicted_at,
        MIN(l.{labeled_at}) AS labeled_at
    FROM {predictions} p
    JOIN changed c ON c.prediction_id = p.{prediction_id}
    JOIN {label_join}
    WHERE p.{model_name} = :model
      AND p.{predicted_at} >= :lookback_start
      AND p.{predicted_at} < :window_end
    GROUP BY p.{prediction_id}, CAST(p.{model_version} AS {text_type}), p.{predicted_at}
    HAVING MIN(l.{labeled_at}) >= :changed_from
),
newly_labelled AS (
    SELECT model_version, predicted_at, {delay_seconds} AS delay_seconds
    FROM first_labels
)
SELECT
    part,
    model_version,
    COUNT(*) AS labeled,
    SUM(delay_seconds) AS delay_sum,
    MIN(delay_seconds) AS min_delay,
    {bucket_counts},
    {within_all}
FROM (
    SELECT {part_number} AS part, model_version, delay_seconds
    FROM newly_labelled
) numbered
GROUP BY part, model_version
