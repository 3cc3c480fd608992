-- Fragment: the reference predictions with predicted_at in [:reference_start, :reference_end)
-- (of one version when :reference_version is set) that had a label before :labels_as_of, the
-- latest label winning (as in window_rows.sql); a derived table of (model_version, score, label).
(
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
) labelled_reference
