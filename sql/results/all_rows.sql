-- Every row of the store, or of one job (:job NULL for all), oldest window first.
SELECT *
FROM {results}
WHERE CAST(:job AS {text_type}) IS NULL OR job = :job
ORDER BY job, window_end, window_start, row_kind, model_version
