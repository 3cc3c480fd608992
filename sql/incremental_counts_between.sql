-- Per version, the job's predictions made in [:counted_from, :window_start): added to a stored
-- count of those made before :counted_from, they give the predictions before the window
-- (model_predictions_total, evaljobs/ops/incremental/). An index range on (model_name, predicted_at).
SELECT CAST(p.{model_version} AS {text_type}) AS model_version, COUNT(*) AS predictions
FROM {predictions} p
WHERE p.{model_name} = :model
  AND p.{predicted_at} >= :counted_from
  AND p.{predicted_at} < :window_start
GROUP BY CAST(p.{model_version} AS {text_type})
