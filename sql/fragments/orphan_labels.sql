-- Fragment (a CTE): labels that arrived in [:arrived_from, :labels_as_of) for prediction ids
-- that match no prediction at all.
orphans AS (
    SELECT COUNT(*) AS predictions
    FROM {labels} l
    WHERE l.{labeled_at} >= :arrived_from
      AND l.{labeled_at} < :labels_as_of
      AND NOT EXISTS (
          SELECT 1 FROM {predictions} p WHERE p.{prediction_id} = l.{label_prediction_id}
      )
)
