-- Per incremental part of label ARRIVAL time in [:arrived_from, :labels_as_of): the labels and
-- the latest labeled_at, the fingerprint of a stored orphan count (evaljobs/ops/incremental/).
-- An index range on labels(labeled_at). The part number reads a column named predicted_at
-- (sql/fragments/part_number.sql), so the arrival time is given that name here.
SELECT part, COUNT(*) AS labels, MAX(predicted_at) AS last_labeled_at
FROM (
    SELECT {part_number} AS part, predicted_at
    FROM (
        SELECT l.{labeled_at} AS predicted_at
        FROM {labels} l
        WHERE l.{labeled_at} >= :arrived_from
          AND l.{labeled_at} < :labels_as_of
    ) arrivals
) numbered
GROUP BY part
