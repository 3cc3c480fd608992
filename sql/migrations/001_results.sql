-- The results store: one row per evaluated (job, window) -- row_kind 'job', model_version '' --
-- and one per (job, model version, window) -- row_kind 'version'. The job row is also the run's
-- claim: it is inserted with status 'running' before the evaluation starts, and the primary key
-- lets only one process hold a window at a time. Version rows are replaced together with the
-- job row's final status in one transaction, so a reader never sees half a result.
-- Runs on SQLite and PostgreSQL; timestamps are UTC (text on SQLite, as in sql/schema.sql).
CREATE TABLE IF NOT EXISTS {results} (
    job                  VARCHAR(200) NOT NULL,
    row_kind             VARCHAR(8) NOT NULL,            -- 'job' or 'version'
    model_version        VARCHAR(200) NOT NULL,          -- '' on the job row
    window_start         TIMESTAMP WITH TIME ZONE NOT NULL,
    window_end           TIMESTAMP WITH TIME ZONE NOT NULL,
    model                VARCHAR(200) NOT NULL,
    evaluated_at         TIMESTAMP WITH TIME ZONE NOT NULL,  -- the schedule's fire time
    labels_as_of         TIMESTAMP WITH TIME ZONE NOT NULL,
    origin               VARCHAR(16) NOT NULL,           -- run | schedule | backfill
    status               VARCHAR(16) NOT NULL,           -- running | ok | partial | empty | failed
    claimed_by           VARCHAR(200),                   -- host:pid:token while a run holds the window
    claimed_at           TIMESTAMP WITH TIME ZONE,
    started_at           TIMESTAMP WITH TIME ZONE,
    finished_at          TIMESTAMP WITH TIME ZONE,
    duration_seconds     DOUBLE PRECISION,
    evaluations          INTEGER NOT NULL DEFAULT 0,     -- how often this window was evaluated
    push_status          VARCHAR(16) NOT NULL DEFAULT 'none',  -- none | pending | pushed | superseded
    push_attempts        INTEGER NOT NULL DEFAULT 0,
    pushed_at            TIMESTAMP WITH TIME ZONE,
    push_error           TEXT,
    window_predictions   BIGINT,
    labeled_predictions  BIGINT,
    accuracy             DOUBLE PRECISION,
    macro_recall         DOUBLE PRECISION,
    macro_f1             DOUBLE PRECISION,
    roc_auc              DOUBLE PRECISION,
    error                TEXT,                           -- why a failed run failed, or its problems
    result               TEXT,                           -- JSON: the record's to_dict()
    exposition           TEXT,                           -- the group's metrics (Prometheus text), as pushed
    -- window_end before window_start: "a newer window of this group" is a range of the key.
    PRIMARY KEY (job, row_kind, model_version, window_end, window_start)
);

-- The scheduler's "which windows are done", the push retry's pending rows, and a window's rows.
CREATE INDEX IF NOT EXISTS {results_by_time} ON {results} (job, row_kind, evaluated_at);
CREATE INDEX IF NOT EXISTS {results_by_push} ON {results} (job, push_status);
CREATE INDEX IF NOT EXISTS {results_by_window} ON {results} (job, window_end, window_start, row_kind)
