-- The latest finished evaluation time of a job, and whether it has any row at all.
SELECT
    MAX(CASE WHEN status IN ('ok', 'partial', 'empty') THEN evaluated_at END) AS last_done,
    COUNT(*) AS job_rows
FROM {results}
WHERE job = :job AND row_kind = 'job'
