-- SQLite only (it stores text in a numeric column, and CAST('abc' AS REAL) is a silent 0):
-- values of a numeric drift feature, in the window or the reference, that are not numbers.
-- PostgreSQL refuses such a cast with an error, which evaljobs reports the same way.
WITH {current_rows},
{reference_rows},
both_samples AS (
    SELECT value FROM current_rows
    UNION ALL
    SELECT value FROM reference_rows
)
SELECT COUNT(*) AS non_numeric, MIN(CAST(value AS {text_type})) AS example
FROM both_samples
WHERE typeof(value) = 'blob'
   OR (typeof(value) = 'text' AND (trim(value) = '' OR trim(value) GLOB '*[^0-9.eE+-]*'))
