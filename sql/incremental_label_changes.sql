-- The change to stored parts' confusion cells from labels that arrived between the parts'
-- :stored_as_of and this run's :labels_as_of (late labels; either order, a backfill reads an
-- earlier time): for each prediction of [:window_start, :window_end) with a label that arrived
-- in [:changed_from, :changed_to), its cell as of :stored_as_of counts -1 and its cell as of
-- :labels_as_of counts +1 (the latest-label rule of sql/window_rows.sql at each time, written
-- once in sql/fragments/part_rows.sql), summed per part and cell. Reads only those predictions
-- (labels by arrival time, then their keys), so a part with late labels is updated, not
-- rescanned (evaljobs/ops/incremental/).
WITH changed AS (
    SELECT DISTINCT l.{label_prediction_id} AS prediction_id
    FROM {labels} l
    WHERE l.{labeled_at} >= :changed_from
      AND l.{labeled_at} < :changed_to
),
before_change AS (
    {changed_rows_before}
),
after_change AS (
    {changed_rows_after}
)
SELECT part, model_version, label, predicted_label, SUM(change) AS change
FROM (
    SELECT {part_number} AS part, model_version, label, predicted_label, change
    FROM (
        SELECT predicted_at, model_version, label, predicted_label, -1 AS change FROM before_change
        UNION ALL
        SELECT predicted_at, model_version, label, predicted_label, 1 AS change FROM after_change
    ) both_times
) numbered
GROUP BY part, model_version, label, predicted_label
