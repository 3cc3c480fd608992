-- Who holds (or last finished) a window: for the message of a run that skips it.
SELECT status, claimed_by, claimed_at, finished_at
FROM {results}
WHERE job = :job AND row_kind = 'job' AND model_version = ''
  AND window_start = :window_start AND window_end = :window_end
