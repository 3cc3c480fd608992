-- Fragment (drift): the labels of the reference predictions (label drift), labelled ones
-- only, the latest label before :labels_as_of winning (as in window_rows.sql).
reference_rows AS (
    SELECT {label_value} AS value
    FROM (
        SELECT
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
