-- Stored parts found still valid at a later labels_as_of, in ONE statement instead of one per
-- part: every summary of the kind read at :old_as_of whose key lies in [:first_key, :last_key]
-- (the keys of one window's parts: a digest, then ISO 8601 UTC bounds, so their byte order is
-- time order). evaljobs/ops/incremental/ uses it only when the stored keys in that range with
-- that as_of are exactly the parts it found unchanged (else it touches them one by one).
UPDATE {summaries}
SET as_of = :as_of, updated_at = :updated_at
WHERE job = :job AND kind = :kind AND as_of = :old_as_of
  AND summary_key >= :first_key AND summary_key <= :last_key
