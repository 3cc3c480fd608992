-- Evaluation times (schedule fire times) of a job's finished windows in [:since, :until].
SELECT evaluated_at
FROM {results}
WHERE job = :job AND row_kind = 'job'
  AND evaluated_at >= :since AND evaluated_at <= :until
  AND status IN ('ok', 'partial', 'empty')
