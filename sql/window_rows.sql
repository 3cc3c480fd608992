-- Fragment, included as the first CTE of the window queries.
-- The job's predictions with predicted_at in [:window_start, :window_end), each with the
-- latest label that had arrived before :labels_as_of (NULL when none had). Class labels and
-- versions are compared as text, so integer and text columns behave the same.
-- ROW_NUMBER keeps exactly one label per prediction even when label rows are exact
-- duplicates (at-least-once ingestion); a NOT EXISTS anti-join was ~35% faster on
-- PostgreSQL but counts such duplicates twice.
window_rows AS (
    SELECT model_version, predicted_label, label, score, latency_seconds
    FROM (
        SELECT
            CAST(p.{model_version} AS VARCHAR) AS model_version,
            CAST(p.{predicted_label} AS VARCHAR) AS predicted_label,
            CAST(l.{label} AS VARCHAR) AS label,
            {score_expr} AS score,
            {latency_seconds_expr} AS latency_seconds,
            ROW_NUMBER() OVER (
                PARTITION BY p.{prediction_id}
                ORDER BY l.{labeled_at} DESC, CAST(l.{label} AS VARCHAR) DESC
            ) AS label_rank
        FROM {predictions} p
        LEFT JOIN {labels} l
            ON l.{label_prediction_id} = p.{prediction_id}
           AND l.{labeled_at} < :labels_as_of
        WHERE p.{model_name} = :model
          AND p.{predicted_at} >= :window_start
          AND p.{predicted_at} < :window_end
    ) ranked
    -- "= 1" would make PostgreSQL expect 0.5% of the rows survive, and plan for that.
    WHERE label_rank < 2
)
