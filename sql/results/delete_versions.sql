-- The version rows of one window, before its new ones are written (same transaction).
DELETE FROM {results}
WHERE job = :job AND row_kind = 'version'
  AND window_start = :window_start AND window_end = :window_end
