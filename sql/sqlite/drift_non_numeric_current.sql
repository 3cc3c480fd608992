-- SQLite only: drift_non_numeric.sql over the window alone, when a numeric reference's summary
-- is stored (it was stored only after its values were found to be numbers, and is reused only
-- while its rows' fingerprint holds).
WITH {current_rows}
SELECT COUNT(*) AS non_numeric, MIN(CAST(value AS {text_type})) AS example
FROM current_rows
WHERE typeof(value) = 'blob'
   OR (typeof(value) = 'text' AND (trim(value) = '' OR trim(value) GLOB '*[^0-9.eE+-]*'))
