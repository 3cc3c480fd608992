-- The mean of the reference's finite values: the centre the fine bins of
-- drift_numeric_binned.sql are laid around (one pass over the reference alone).
WITH {reference_rows}
SELECT AVG(CASE WHEN value - value = 0 THEN value END) AS center, COUNT(*) AS reference_rows
FROM reference_rows
