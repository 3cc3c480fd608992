-- What an incremental window (evaljobs/ops/incremental.py) does not keep in parts: per version,
-- the predictions made before :window_start (the window's own are the parts' counts; together
-- they are window_aggregates.sql's cumulative total), and the orphan labels that arrived in
-- [:arrived_from, :labels_as_of), as in sql/window_aggregates.sql.
WITH {orphan_labels}
SELECT 'total' AS row_kind, CAST(p.{model_version} AS {text_type}) AS model_version, COUNT(*) AS predictions
FROM {predictions} p
WHERE p.{model_name} = :model
  AND p.{predicted_at} < :window_start
GROUP BY CAST(p.{model_version} AS {text_type})
UNION ALL
SELECT 'orphans', NULL, predictions
FROM orphans
