-- The label-arrival parts (of [:arrived_from, :labels_as_of)) holding labels of predictions made in
-- [:window_start, :window_end), a range of window parts this run read again: a prediction written
-- after its label may have matched a label stored as an orphan (evaljobs/ops/incremental/).
SELECT DISTINCT part
FROM (
    SELECT {part_number} AS part
    FROM (
        SELECT l.{labeled_at} AS predicted_at
        FROM {labels} l
        JOIN {predictions} p ON p.{prediction_id} = l.{label_prediction_id}
        WHERE l.{labeled_at} >= :arrived_from
          AND l.{labeled_at} < :labels_as_of
          AND {model_window}
    ) touched
) numbered
