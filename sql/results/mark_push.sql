-- Record a push attempt of one row: :push_status 'pushed' (with :pushed_at), 'superseded',
-- or 'pending' again with the error of a failed attempt.
UPDATE {results}
SET push_status = :push_status,
    pushed_at = :pushed_at,
    push_error = :push_error,
    push_attempts = push_attempts + :attempted
WHERE job = :job AND row_kind = :row_kind AND model_version = :model_version
  AND window_start = :window_start AND window_end = :window_end
  AND push_status = 'pending'
