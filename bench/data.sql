-- Benchmark data, made entirely in PostgreSQL (generate_series), in the schema the connection's
-- search_path names (bench/run.py uses its own schema, bench9). :rows predictions of one model
-- 'm' spread evenly over the 80 days before 2026-03-01 (the job evaluates a 90-day window at
-- that instant, so every prediction is in it): 3 versions, 5 classes, a score, a latency, a
-- continuous feature_x (normal; shifted by 0.2 for v3, which therefore drifts) and a
-- categorical feature_cat (6 countries).
--   labels      80% of the predictions are labelled one hour after the prediction (70% of the
--               labels equal the prediction); one label per prediction, declared by its
--               primary key, as a labels table kept by upsert has it.
--   labels_log  the same labels plus, for 2% of them, an earlier label that the later one
--               corrects; no unique key (an append-only log), so evaljobs must rank labels.
SELECT setseed(0.9);

CREATE TABLE predictions AS
SELECT
    'p' || g AS prediction_id,
    CAST('m' AS VARCHAR(200)) AS model_name,
    'v' || (1 + g % 3) AS model_version,
    TIMESTAMPTZ '2026-03-01 00:00:00+00' - INTERVAL '80 days'
        + (g * (6912000.0 / :rows)) * INTERVAL '1 second' AS predicted_at,
    'c' || floor(random() * 5)::int AS predicted_label,
    random() AS score,
    exp(-3 + 0.5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS latency_seconds,
    sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) + CASE WHEN g % 3 = 2 THEN 0.2 ELSE 0 END AS feature_x,
    (ARRAY['US', 'US', 'US', 'GB', 'DE', 'DE', 'FR', 'IN', 'IN', 'BR'])[1 + floor(random() * 10)::int] AS feature_cat
FROM generate_series(1::bigint, :rows) AS g;

CREATE TABLE labels AS
SELECT prediction_id,
       CASE WHEN random() < 0.7 THEN predicted_label ELSE 'c' || floor(random() * 5)::int END AS label,
       predicted_at + INTERVAL '1 hour' AS labeled_at
FROM predictions
WHERE random() < 0.8;

CREATE TABLE labels_log AS
SELECT prediction_id, label, labeled_at FROM labels
UNION ALL
SELECT prediction_id, 'c' || floor(random() * 5)::int, labeled_at - INTERVAL '30 minutes'
FROM labels
WHERE random() < 0.02;

-- The indexes sql/schema.sql creates.
ALTER TABLE predictions ADD PRIMARY KEY (prediction_id, model_version);
CREATE INDEX ON predictions (model_name, predicted_at);
ALTER TABLE labels ADD PRIMARY KEY (prediction_id);
CREATE INDEX ON labels (labeled_at);
CREATE INDEX ON labels_log (prediction_id, labeled_at);
CREATE INDEX ON labels_log (labeled_at);
VACUUM ANALYZE predictions;
VACUUM ANALYZE labels;
VACUUM ANALYZE labels_log
