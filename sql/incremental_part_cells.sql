-- The confusion cells of sql/window_aggregates.sql (their prediction counts; the label IS NULL
-- cell counts unlabelled predictions) per incremental part of [:window_start, :window_end):
-- the same rows and latest-label rule as sql/window_rows.sql (sql/fragments/part_rows.sql),
-- plus the part number.
SELECT part, model_version, label, predicted_label, COUNT(*) AS predictions
FROM (
    SELECT {part_number} AS part, model_version, predicted_label, label
    FROM (
        {part_rows}
    ) part_rows
) numbered
GROUP BY part, model_version, label, predicted_label
