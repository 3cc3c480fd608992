-- The confusion cells of sql/window_aggregates.sql (their prediction counts; the label IS NULL
-- cell counts unlabelled predictions) per incremental part of [:window_start, :window_end):
-- the same rows and latest-label rule as sql/window_rows.sql, plus the part number.
SELECT part, model_version, label, predicted_label, COUNT(*) AS predictions
FROM (
    SELECT {part_number} AS part, model_version, predicted_label, label
    FROM (
        SELECT
            p.{predicted_at} AS predicted_at,
            CAST(p.{model_version} AS {text_type}) AS model_version,
            {predicted_label_text} AS predicted_label,
            {label_text} AS label,
            {latest_label_rank}
        FROM {predictions} p
        LEFT JOIN {label_join}
        WHERE {model_window}
    ) ranked
    WHERE label_rank < 2
) numbered
GROUP BY part, model_version, label, predicted_label
