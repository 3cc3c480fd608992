-- The migration versions the results store has applied.
SELECT version FROM {schema_version} ORDER BY version
