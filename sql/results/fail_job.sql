-- A run that failed: the job row says so; the window's earlier result (if any) stays as it was.
UPDATE {results}
SET status = 'failed', claimed_by = NULL, claimed_at = NULL, origin = :origin,
    started_at = :started_at, finished_at = :finished_at, duration_seconds = :duration_seconds,
    evaluations = evaluations + 1, error = :error
WHERE job = :job AND row_kind = 'job' AND model_version = ''
  AND window_start = :window_start AND window_end = :window_end
  AND claimed_by = :claimed_by
