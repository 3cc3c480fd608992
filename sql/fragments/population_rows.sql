-- Fragment (a CTE), the first of sql/window_aggregates.sql: the label-delay population of a
-- window (evaljobs/quality/label_delay.py: the job's predictions made in
-- [:lookback_start, :window_end), which always holds the window) with, per prediction,
--   label          the LATEST label that had arrived before :labels_as_of (NULL when none had),
--                  which decides the label's value (the rule of sql/window_rows.sql);
--   labeled_at     when its FIRST label before :labels_as_of arrived ({first_labeled_at}): a
--                  label counts for coverage as soon as one is there;
--   delay_seconds  the delay from the prediction to that first label;
--   in_window      1 for the window's own predictions ([:window_start, :window_end)), else 0.
-- One join of predictions to labels serves both the window's confusion cells and the label
-- delays: they were two statements, and the look-back's join alone cost ~1.3x the window's.
-- With a labels table that declares one row per prediction id, the latest label is the first
-- and the only one ({latest_label_rank} is 1, {first_labeled_at} the label's own time): a single
-- parallel hash join, no window function.
population_rows AS (
    SELECT
        model_version,
        predicted_label,
        label,
        score,
        latency_seconds,
        in_window,
        predicted_at,
        labeled_at,
        {delay_seconds} AS delay_seconds
    FROM (
        SELECT
            CAST(p.{model_version} AS {text_type}) AS model_version,
            {predicted_label_text} AS predicted_label,
            {label_text} AS label,
            {score_expr} AS score,
            {latency_seconds_expr} AS latency_seconds,
            CASE WHEN p.{predicted_at} >= :window_start THEN 1 ELSE 0 END AS in_window,
            p.{predicted_at} AS predicted_at,
            {first_labeled_at} AS labeled_at,
            {latest_label_rank}
        FROM {predictions} p
        LEFT JOIN {label_join}
        WHERE p.{model_name} = :model
          AND p.{predicted_at} >= :lookback_start
          AND p.{predicted_at} < :window_end
    ) ranked
    WHERE label_rank < 2
)
