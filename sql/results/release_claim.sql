-- Give up a claim on a window that keeps its earlier result.
UPDATE {results}
SET claimed_by = NULL, claimed_at = NULL
WHERE job = :job AND row_kind = 'job' AND model_version = ''
  AND window_start = :window_start AND window_end = :window_end
  AND claimed_by = :claimed_by
