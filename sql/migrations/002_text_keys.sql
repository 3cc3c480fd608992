-- Job names, models and model versions of any length: a model_version longer than 200
-- characters made every write of its window fail on PostgreSQL (value too long), which left
-- the run's claim behind and nothing pushed. VARCHAR(n) to TEXT is binary-coercible on
-- PostgreSQL: no table rewrite, the primary key stays as it is.
ALTER TABLE {results}
    ALTER COLUMN job TYPE TEXT,
    ALTER COLUMN model TYPE TEXT,
    ALTER COLUMN model_version TYPE TEXT,
    ALTER COLUMN claimed_by TYPE TEXT
