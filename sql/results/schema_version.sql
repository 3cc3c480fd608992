-- Which migrations of sql/migrations/ the results store has applied (one row each).
CREATE TABLE IF NOT EXISTS {schema_version} (
    version     INTEGER PRIMARY KEY,
    name        VARCHAR(200) NOT NULL,
    applied_at  TIMESTAMP WITH TIME ZONE NOT NULL
)
