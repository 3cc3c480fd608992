-- Fragment (PostgreSQL): sql/fragments/part_number.sql with date_part, which is double precision:
-- EXTRACT(EPOCH ...) is numeric since PostgreSQL 14, and numeric arithmetic on every row of the
-- window cost several times the scan (see sql/postgresql/fragments/delay_seconds.sql).
CAST(FLOOR((date_part('epoch', predicted_at) - :part_offset) / :part_seconds) AS BIGINT)
