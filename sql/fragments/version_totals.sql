-- Fragment (a CTE): per version, its predictions up to the window's end (a counter that never
-- resets). The including query defines window_counts (model_version, predictions): the window's
-- own predictions, which it has counted already; only the predictions made before the window are
-- read again (an index range on (model_name, predicted_at)), not the whole history up to the
-- window's end.
totals AS (
    SELECT model_version, SUM(predictions) AS predictions
    FROM (
        SELECT model_version, predictions FROM window_counts
        UNION ALL
        SELECT CAST(p.{model_version} AS {text_type}), COUNT(*)
        FROM {predictions} p
        WHERE p.{model_name} = :model
          AND p.{predicted_at} < :window_start
        GROUP BY CAST(p.{model_version} AS {text_type})
    ) counted
    GROUP BY model_version
)
