-- Every summary of a job (all kinds): evaljobs run --refresh-summaries.
DELETE FROM {summaries}
WHERE job = :job
