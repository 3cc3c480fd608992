-- Fragment, included as the first CTE of the window queries.
-- The job's predictions with predicted_at in [:window_start, :window_end), each with the
-- latest label that had arrived before :labels_as_of (NULL when none had). Class labels and
-- versions are compared as text, so integer and text columns behave the same ({label_text}
-- also writes a whole-number float as an integer on engines whose text of 1.0 is '1.0').
-- The latest-label rule is sql/fragments/latest_label_rank.sql; a NOT EXISTS anti-join was
-- ~35% faster on PostgreSQL but counts exact duplicate label rows twice.
window_rows AS (
    SELECT model_version, predicted_label, label, score, latency_seconds
    FROM (
        SELECT
            CAST(p.{model_version} AS {text_type}) AS model_version,
            {predicted_label_text} AS predicted_label,
            {label_text} AS label,
            {score_expr} AS score,
            {latency_seconds_expr} AS latency_seconds,
            {latest_label_rank}
        FROM {predictions} p
        LEFT JOIN {label_join}
        WHERE {model_window}
    ) ranked
    WHERE label_rank < 2
)
