-- Fragment (a derived table's query): the job's predictions with predicted_at in
-- [:window_start, :window_end), with predicted_at (for {part_number}), each with the latest
-- label that had arrived before :{labels_bound} (NULL when none had): the rows and latest-label
-- rule of sql/window_rows.sql, for the incremental parts (evaljobs/ops/incremental/).
-- Included as {part_rows} (every prediction, labels as of :labels_as_of) and as
-- {changed_rows_before} / {changed_rows_after} (only the predictions of the including query's
-- `changed` CTE, through {changed_only}; labels as of :stored_as_of / :labels_as_of). The label
-- join is sql/fragments/label_join.sql with the bound as a slot.
SELECT predicted_at, model_version, predicted_label, label
    FROM (
        SELECT
            p.{predicted_at} AS predicted_at,
            CAST(p.{model_version} AS {text_type}) AS model_version,
            {predicted_label_text} AS predicted_label,
            {label_text} AS label,
            {latest_label_rank}
        FROM {predictions} p
        {changed_only}
        LEFT JOIN {labels} l
            ON l.{label_prediction_id} = p.{prediction_id}
           AND l.{labeled_at} < :{labels_bound}
        WHERE {model_window}
    ) ranked
    WHERE label_rank < 2
