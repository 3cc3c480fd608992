-- The mean of the reference's finite values: the centre the fine bins of
-- drift_numeric_binned.sql are laid around when the reference is a table or the labels (one
-- pass over the reference alone; the model's own predictions use drift_numeric_center_sample.sql).
WITH {reference_rows}
SELECT AVG(CASE WHEN value - value = 0 THEN value END) AS center, COUNT(*) AS reference_rows
FROM reference_rows
