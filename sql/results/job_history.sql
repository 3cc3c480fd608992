-- A job's latest finished evaluation time, and its latest evaluation time of any status (NULL:
-- the job has no row): each one backward step of the (job, row_kind, evaluated_at) index.
SELECT
    (SELECT evaluated_at FROM {results}
     WHERE job = :job AND row_kind = 'job' AND status IN ('ok', 'partial', 'empty')
     ORDER BY evaluated_at DESC LIMIT 1) AS last_done,
    (SELECT evaluated_at FROM {results}
     WHERE job = :job AND row_kind = 'job'
     ORDER BY evaluated_at DESC LIMIT 1) AS last_any
