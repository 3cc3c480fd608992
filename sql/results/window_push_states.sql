-- The push state of a window's version rows, read before a backfill replaces them
-- (finish_job.sql keeps the job row's; these are carried over to the new version rows).
SELECT model_version, push_status, push_attempts, pushed_at, push_error
FROM {results}
WHERE job = :job AND row_kind = 'version'
  AND window_start = :window_start AND window_end = :window_end
