-- Every stored summary of one kind of one job (evaljobs/ops/incremental/ picks the ones it needs).
SELECT summary_key, fingerprint, as_of, payload
FROM {summaries}
WHERE job = :job AND kind = :kind
