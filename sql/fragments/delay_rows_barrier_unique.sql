-- Fragment (a select-list tail): a set-returning function that yields one row per row, for
-- sql/postgresql/label_delays.sql (and incremental_delay_parts.sql, label_delay_suggestion.sql
-- there) when the labels table declares one row per prediction id
-- (sql/fragments/label_delay_rows_unique.sql). It keeps the subquery from being pulled up, so
-- the delay is computed once per row and the planner hashes the (version, minute) groups in
-- parallel instead of sorting one estimated group per row on disk.
, unnest(ARRAY[0]) AS one_row
