-- Latency histogram per model version over the window's predictions: the aggregates of
-- sql/fragments/latency_sums.sql (count, sum, range, NULLs and one cumulative count per bucket
-- bound). Latency does not depend on labels, so this reads predictions alone, without the
-- label join of window_rows.
SELECT
    model_version,
    {latency_sums}
FROM (
    SELECT
        CAST(p.{model_version} AS {text_type}) AS model_version,
        {latency_seconds_expr} AS latency_seconds
    FROM {predictions} p
    WHERE {model_window}
) window_latencies
GROUP BY model_version
