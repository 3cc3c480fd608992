-- Results of a job still waiting for the Pushgateway. A Pushgateway group holds only its
-- latest value, so a pending row is pushed only when no newer window of the same group is
-- pending or pushed ("superseded" = 1 otherwise). Backfilled rows (push_status 'none') never count.
-- A newer window evaluated at a time still in the future (a mistyped --at, a wrong clock)
-- supersedes nothing: else it would silence the group until that time.
-- Each EXISTS is a range of the primary key (job, row_kind, model_version, window_end, ...).
SELECT
    p.row_kind, p.model_version, p.window_start, p.window_end, p.model, p.exposition,
    CASE WHEN EXISTS (
        SELECT 1 FROM {results} n
        WHERE n.job = p.job AND n.row_kind = p.row_kind AND n.model_version = p.model_version
          AND n.window_end > p.window_end
          AND n.push_status IN ('pending', 'pushed') AND n.evaluated_at <= :now
    ) OR EXISTS (
        SELECT 1 FROM {results} n
        WHERE n.job = p.job AND n.row_kind = p.row_kind AND n.model_version = p.model_version
          AND n.window_end = p.window_end AND n.window_start > p.window_start
          AND n.push_status IN ('pending', 'pushed') AND n.evaluated_at <= :now
    ) THEN 1 ELSE 0 END AS superseded
FROM {results} p
WHERE p.job = :job AND p.push_status = 'pending'
ORDER BY p.window_end, p.window_start, p.row_kind, p.model_version
