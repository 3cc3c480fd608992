-- Claim a window that already has a row: only when nobody holds it (or the holder's claim is
-- older than the expiry, or :dead_claim names it: a process on this host that is gone), and -- unless :replace -- only when no finished
-- result exists. One statement, so two claimants cannot both succeed.
UPDATE {results}
SET claimed_by = :claimed_by, claimed_at = :now
WHERE job = :job AND row_kind = 'job' AND model_version = ''
  AND window_start = :window_start AND window_end = :window_end
  AND (claimed_by IS NULL OR claimed_at < :stale_before OR claimed_by = :dead_claim)
  AND (:replace = 1 OR status NOT IN ('ok', 'partial', 'empty'))
