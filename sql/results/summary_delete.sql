-- One summary, before its new value is inserted (same transaction).
DELETE FROM {summaries}
WHERE job = :job AND kind = :kind AND summary_key = :summary_key
