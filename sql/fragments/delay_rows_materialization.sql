-- Fragment: MATERIALIZED. How sql/postgresql/label_delay_suggestion.sql keeps the look-back rows
-- it reads twice when they come from a GROUP BY per prediction id (sql/fragments/label_delay_rows.sql):
-- computed once (that GROUP BY sorts the whole look-back; twice took 109 s against the original's
-- 62 s at 10M rows, labels_log). See sql/fragments/delay_rows_materialization_unique.sql.
MATERIALIZED
