-- Fragment: the result of sql/segment_aggregates.sql: one row per cell of a version, segment and
-- (folded) value, with how many values of that segment were folded into '(other)'.
SELECT c.*, COALESCE(f.folded_values, 0) AS folded_values, COALESCE(f.folded_predictions, 0) AS folded_predictions
FROM cells c
LEFT JOIN folds f ON f.segment_index = c.segment_index
