-- Fragment (estimate): the calibration reference when it is the model's own predictions:
-- those with predicted_at in [:reference_start, :reference_end) (of one version when
-- :reference_version is set) that had a label before :labels_as_of, the latest label winning.
reference_rows AS (
    SELECT model_version, score, label
    FROM (
        SELECT
            CAST(p.{model_version} AS {text_type}) AS model_version,
            {score_expr} AS score,
            {label_text} AS label,
            {latest_label_rank}
        FROM {predictions} p
        JOIN {label_join}
        WHERE {model_reference_window}
          AND (CAST(:reference_version AS {text_type}) IS NULL
               OR CAST(p.{model_version} AS {text_type}) = CAST(:reference_version AS {text_type}))
    ) ranked
    WHERE label_rank < 2
)
