-- Per incremental part of [:window_start, :window_end): the job's predictions and the latest
-- predicted_at, the part's fingerprint (evaljobs/ops/incremental/). Reads the predictions
-- alone, an index range on (model_name, predicted_at), no label join.
SELECT part, COUNT(*) AS predictions, MAX(predicted_at) AS last_predicted_at
FROM (
    SELECT {part_number} AS part, predicted_at
    FROM (
        SELECT p.{predicted_at} AS predicted_at
        FROM {predictions} p
        WHERE {model_window}
    ) window_times
) numbered
GROUP BY part
