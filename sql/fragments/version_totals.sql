-- Fragment (a CTE): per version, its predictions up to the window's end (a counter that never resets).
totals AS (
    SELECT CAST(p.{model_version} AS {text_type}) AS model_version, COUNT(*) AS predictions
    FROM {predictions} p
    WHERE p.{model_name} = :model
      AND p.{predicted_at} < :window_end
    GROUP BY CAST(p.{model_version} AS {text_type})
)
