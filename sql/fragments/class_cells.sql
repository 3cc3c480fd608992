-- Fragment: the measure of a classification cell (sql/segment_aggregates.sql): its predictions.
-- The cell's keys (label, prediction) are grouped on; label IS NULL for unlabelled predictions.
COUNT(*) AS predictions
