-- Every stored summary of one job, all kinds, in one statement (an incremental run reads them
-- once and picks what it needs: evaljobs/ops/incremental/).
SELECT kind, summary_key, fingerprint, as_of, payload
FROM {summaries}
WHERE job = :job
