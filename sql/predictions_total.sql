-- Cumulative predictions per version of the model up to the window's end: a counter that
-- never resets between runs, so rate() over it is throughput.
SELECT CAST(p.{model_version} AS VARCHAR) AS model_version, COUNT(*) AS predictions
FROM {predictions} p
WHERE p.{model_name} = :model
  AND p.{predicted_at} < :window_end
GROUP BY CAST(p.{model_version} AS VARCHAR)
