-- Claim a window that has no row yet: the job row, status 'running'. A second claimant's
-- insert hits the primary key and inserts nothing (rowcount 0), on SQLite and PostgreSQL alike.
INSERT INTO {results} (
    job, row_kind, model_version, window_start, window_end, model, evaluated_at, labels_as_of,
    origin, status, claimed_by, claimed_at, started_at
) VALUES (
    :job, 'job', '', :window_start, :window_end, :model, :evaluated_at, :labels_as_of,
    :origin, 'running', :claimed_by, :now, :now
)
ON CONFLICT DO NOTHING
