-- Fragment (a CTE): the label-delay population of a window (evaljobs/quality/label_delay.py):
-- the job's predictions made in [:lookback_start, :window_end), each with the delay in seconds
-- from its prediction to the FIRST of its labels that arrived before :labels_as_of (NULL when
-- none had). The first arrival, not the latest label (which decides the label's value): a
-- label counts for coverage as soon as one is there.
label_delay_rows AS (
    SELECT
        model_version,
        predicted_at,
        {delay_seconds} AS delay_seconds
    FROM (
        SELECT
            CAST(p.{model_version} AS {text_type}) AS model_version,
            p.{predicted_at} AS predicted_at,
            MIN(l.{labeled_at}) AS labeled_at
        FROM {predictions} p
        LEFT JOIN {label_join}
        WHERE p.{model_name} = :model
          AND p.{predicted_at} >= :lookback_start
          AND p.{predicted_at} < :window_end
        GROUP BY p.{prediction_id}, CAST(p.{model_version} AS {text_type}), p.{predicted_at}
    ) first_labels
)
