-- Labels that arrived in [:arrived_from, :labels_as_of) for a prediction id that matches no
-- prediction at all: counted and reported, never an error.
SELECT COUNT(*) AS orphan_labels
FROM {labels} l
WHERE l.{labeled_at} >= :arrived_from
  AND l.{labeled_at} < :labels_as_of
  AND NOT EXISTS (
      SELECT 1 FROM {predictions} p WHERE p.{prediction_id} = l.{label_prediction_id}
  )
