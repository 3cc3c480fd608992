-- Fragment, included as the first CTE of the window queries.
-- The job's predictions with predicted_at in [:window_start, :window_end), each with the
-- latest label that had arrived before :labels_as_of (NULL when none had). Class labels and
-- versions are compared as text, so integer and text columns behave the same ({label_text}
-- also writes a whole-number float as an integer on engines whose text of 1.0 is '1.0').
-- A prediction is one (prediction_id, model_version): shadow or canary versions may score
-- the same request id, and each keeps its own row; exact duplicate rows count once.
-- ROW_NUMBER keeps exactly one label per prediction even when label rows are exact
-- duplicates (at-least-once ingestion); a NOT EXISTS anti-join was ~35% faster on
-- PostgreSQL but counts such duplicates twice.
window_rows AS (
    SELECT model_version, predicted_label, label, score, latency_seconds
    FROM (
        SELECT
            CAST(p.{model_version} AS VARCHAR) AS model_version,
            {predicted_label_text} AS predicted_label,
            {label_text} AS label,
            {score_expr} AS score,
            {latency_seconds_expr} AS latency_seconds,
            ROW_NUMBER() OVER (
                PARTITION BY p.{prediction_id}, p.{model_version}
                ORDER BY l.{labeled_at} DESC, {label_text} DESC
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
