-- One summary (after summary_delete.sql of its key, in the same transaction).
INSERT INTO {summaries} (job, kind, summary_key, fingerprint, as_of, payload, updated_at)
VALUES (:job, :kind, :summary_key, :fingerprint, :as_of, :payload, :updated_at)
