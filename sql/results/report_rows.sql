-- What `evaljobs report` draws: a job's finished rows (job and version) whose window ends in
-- (:since, :until], oldest first. A range of the (job, window_end, window_start, row_kind)
-- index; `result` is the stored record (JSON), nothing is evaluated again.
SELECT row_kind, model_version, window_start, window_end, evaluated_at, labels_as_of, status, error, result
FROM {results}
WHERE job = :job
  AND window_end > :since AND window_end <= :until
  AND status <> 'running'
ORDER BY window_end, window_start, row_kind, model_version
