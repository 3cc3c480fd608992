-- sql/results/summary_touch_range.sql for PostgreSQL: the key range compared byte by byte
-- (COLLATE "C"), as Python compares the keys, whatever the database's collation (a locale's
-- collation may ignore the punctuation of the ISO timestamps).
UPDATE {summaries}
SET as_of = :as_of, updated_at = :updated_at
WHERE job = :job AND kind = :kind AND as_of = :old_as_of
  AND summary_key COLLATE "C" >= :first_key AND summary_key COLLATE "C" <= :last_key
