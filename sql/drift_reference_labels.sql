-- Fragment (drift): the labels of the reference predictions (label drift), labelled ones
-- only, the latest label before :labels_as_of winning (as in window_rows.sql).
reference_rows AS (
    SELECT label AS value
    FROM (
        SELECT
            {label_text} AS label,
            ROW_NUMBER() OVER (
                PARTITION BY p.{prediction_id}, p.{model_version}
                ORDER BY l.{labeled_at} DESC, {label_text} DESC
            ) AS label_rank
        FROM {predictions} p
        JOIN {labels} l
            ON l.{label_prediction_id} = p.{prediction_id}
           AND l.{labeled_at} < :labels_as_of
        WHERE p.{model_name} = :model
          AND p.{predicted_at} >= :reference_start
          AND p.{predicted_at} < :reference_end
          AND (CAST(:reference_version AS VARCHAR) IS NULL
               OR CAST(p.{model_version} AS VARCHAR) = CAST(:reference_version AS VARCHAR))
    ) ranked
    WHERE label_rank = 1
)
