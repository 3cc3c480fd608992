-- A categorical drift reference alone: how many reference rows have each value (NULL a value
-- of its own), as sql/drift_categorical.sql counts them; stored and reused while the
-- reference's fingerprint holds (evaljobs/ops/incremental/). At most :row_limit rows.
WITH {reference_rows}
SELECT value, COUNT(*) AS n
FROM reference_rows
GROUP BY value
LIMIT :row_limit
