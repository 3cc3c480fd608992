-- Stored summaries (issue 9): small aggregates that later runs reuse instead of rescanning, one
-- row per (job, kind, summary_key). kind 'window_part' is one part of an incremental window
-- (evaljobs/ops/incremental.py): summary_key names the job's definition and the part's bounds,
-- fingerprint the part's predictions when it was computed (count and latest predicted_at),
-- as_of the labels_as_of its labels were read at, and payload its aggregates as JSON.
-- Times are ISO 8601 UTC text, so the table is the same on every store engine.
CREATE TABLE IF NOT EXISTS {summaries} (
    job          TEXT NOT NULL,
    kind         VARCHAR(32) NOT NULL,
    summary_key  TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    as_of        TEXT NOT NULL,
    payload      TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (job, kind, summary_key)
)
