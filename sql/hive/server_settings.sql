-- The server settings evaljobs doctor reports (key, value): Spark's SET answers one row per key.
SET spark.sql.shuffle.partitions
