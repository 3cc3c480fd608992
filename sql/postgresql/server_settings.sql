-- The server settings evaljobs doctor reports (name, value); what each means is the dialect
-- entry's server_settings (evaljobs/db/dialects.py).
SELECT 'work_mem' AS name, current_setting('work_mem') AS value
