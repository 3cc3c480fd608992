-- The reference schema on Apache Spark (hive:// URLs): the same columns as sql/schema.sql in
-- Spark's types, as Parquet tables. Spark has no primary keys or indexes; a lakehouse table
-- is usually partitioned by date instead (PARTITIONED BY a date column derived from
-- predicted_at), which the window filter then prunes. Timestamps are UTC (set
-- spark.sql.session.timeZone=UTC; evaljobs also sets the session's time zone).
CREATE TABLE IF NOT EXISTS predictions (
    prediction_id    STRING NOT NULL,
    model_name       STRING NOT NULL,
    model_version    STRING NOT NULL,
    predicted_at     TIMESTAMP NOT NULL,
    predicted_label  STRING NOT NULL,
    score            DOUBLE,
    latency_seconds  DOUBLE
) USING parquet;

CREATE TABLE IF NOT EXISTS labels (
    prediction_id    STRING NOT NULL,
    label            STRING NOT NULL,
    labeled_at       TIMESTAMP NOT NULL
) USING parquet
