-- Fragment (CTEs): the cardinality guard of sql/segment_aggregates.sql. value_volumes (one row
-- per segment and value: its predictions in the window, all versions together) is ranked by
-- volume per segment; values ranked above :max_segment_values are folded into '(other)', and
-- folds counts them per segment.
value_ranks AS (
    SELECT
        segment_index,
        segment_value,
        predictions,
        ROW_NUMBER() OVER (PARTITION BY segment_index ORDER BY predictions DESC, segment_value) AS value_rank
    FROM value_volumes
),
folds AS (
    SELECT segment_index, COUNT(*) AS folded_values, SUM(predictions) AS folded_predictions
    FROM value_ranks
    WHERE value_rank > :max_segment_values
    GROUP BY segment_index
)
