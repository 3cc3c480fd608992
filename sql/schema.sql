-- The reference schema: what evaljobs reads when a job maps no tables or columns.
-- Runs on SQLite and PostgreSQL (and DuckDB). Timestamps are UTC; on SQLite they are
-- text in the form 'YYYY-MM-DD HH:MM:SS[.ffffff]', which is what SQLAlchemy writes.
-- Feature columns are the user's own: add them to predictions (ALTER TABLE ... ADD COLUMN).

-- A prediction is one (prediction_id, model_version): shadow and canary versions may score
-- the same request, and a label for the request applies to each of them.
CREATE TABLE IF NOT EXISTS predictions (
    prediction_id    VARCHAR(64) NOT NULL,
    model_name       VARCHAR(200) NOT NULL,
    model_version    VARCHAR(200) NOT NULL,
    predicted_at     TIMESTAMP WITH TIME ZONE NOT NULL,
    predicted_label  VARCHAR(200) NOT NULL,
    score            DOUBLE PRECISION,          -- probability of the positive class; NULL if none
    latency_seconds  DOUBLE PRECISION,          -- time the model took to answer; NULL if unknown
    -- Also the index the orphan-label count needs (labels looked up by prediction_id):
    -- a predictions table of your own needs one whose first column is prediction_id.
    PRIMARY KEY (prediction_id, model_version)
);

-- Several rows per prediction are allowed: the one with the latest labeled_at wins.
CREATE TABLE IF NOT EXISTS labels (
    prediction_id    VARCHAR(64) NOT NULL,
    label            VARCHAR(200) NOT NULL,
    labeled_at       TIMESTAMP WITH TIME ZONE NOT NULL
);

-- Every query filters predictions by model and time, and joins labels by id.
CREATE INDEX IF NOT EXISTS predictions_model_time ON predictions (model_name, predicted_at);
CREATE INDEX IF NOT EXISTS labels_prediction ON labels (prediction_id, labeled_at);
CREATE INDEX IF NOT EXISTS labels_arrival ON labels (labeled_at);
