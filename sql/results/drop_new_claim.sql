-- Give up a claim on a window that had no result before: the row goes away entirely.
DELETE FROM {results}
WHERE job = :job AND row_kind = 'job' AND model_version = ''
  AND window_start = :window_start AND window_end = :window_end
  AND claimed_by = :claimed_by AND status = 'running'
