-- Per incremental part of label arrival time in [:arrived_from, :labels_as_of): the labels whose
-- prediction id matches no prediction at all (sql/fragments/orphan_labels.sql, per part). The
-- part number reads a column named predicted_at, so the arrival time is given that name.
SELECT part, COUNT(*) AS orphans
FROM (
    SELECT {part_number} AS part
    FROM (
        SELECT l.{labeled_at} AS predicted_at
        FROM {labels} l
        WHERE l.{labeled_at} >= :arrived_from
          AND l.{labeled_at} < :labels_as_of
          AND NOT EXISTS (
              SELECT 1 FROM {predictions} p WHERE p.{prediction_id} = l.{label_prediction_id}
          )
    ) orphans
) numbered
GROUP BY part
