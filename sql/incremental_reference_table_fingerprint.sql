-- The fingerprint of a table drift reference: its row count (a table has no time column
-- evaljobs knows of; `evaljobs run --refresh-summaries` forgets the stored summary after an
-- update that keeps the count).
WITH {reference_rows}
SELECT COUNT(*) AS n, CAST(NULL AS {text_type}) AS last_at
FROM reference_rows
