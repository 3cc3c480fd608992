-- Summaries of a kind that no run has used since :stale_before (parts that left the window).
DELETE FROM {summaries}
WHERE job = :job AND kind = :kind AND updated_at < :stale_before
