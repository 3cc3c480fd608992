-- DuckDB only (SQLAlchemy's inspector reads PostgreSQL's catalog there, which DuckDB lacks; other
-- engines use the inspector): the column lists of the primary keys, unique constraints and unique
-- indexes of one table, one per row as text such as '[prediction_id]'.
SELECT CAST(constraint_column_names AS VARCHAR) AS columns
FROM duckdb_constraints()
WHERE table_name = :table_name
  AND (CAST(:schema_name AS VARCHAR) IS NULL OR schema_name = CAST(:schema_name AS VARCHAR))
  AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')
UNION ALL
SELECT expressions
FROM duckdb_indexes()
WHERE table_name = :table_name
  AND (CAST(:schema_name AS VARCHAR) IS NULL OR schema_name = CAST(:schema_name AS VARCHAR))
  AND is_unique
