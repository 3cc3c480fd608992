-- A summary found still valid at a later labels_as_of: only its as_of and updated_at move.
UPDATE {summaries}
SET as_of = :as_of, updated_at = :updated_at
WHERE job = :job AND kind = :kind AND summary_key = :summary_key
