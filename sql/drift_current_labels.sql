-- Fragment (drift): the labels of the window's predictions (label drift), per version, over
-- the labelled predictions only; the latest label before :labels_as_of wins, as everywhere.
-- {label_value} is the label text, or the text as a number for regression jobs. Without
-- :excluded_version's rows (when set), as sql/drift_current_predictions.sql.
{window_rows},
current_rows AS (
    SELECT model_version, {label_value} AS value
    FROM window_rows
    WHERE label IS NOT NULL
      AND (CAST(:excluded_version AS {text_type}) IS NULL OR model_version <> CAST(:excluded_version AS {text_type}))
)
