-- The centre the fine bins of drift_numeric_binned.sql are laid around, for a reference of
-- the model's own predictions: the median of the first :sample_size finite reference values
-- in time order (ties by value, so the sample and its median are the same on every run and
-- engine). The index on (model, predicted_at) finds them without reading the reference, which
-- the mean (drift_numeric_center.sql, for references elsewhere) has to read in full. Any
-- centre inside the data keeps evaljobs/drift/binned.py's bounds: they are measured on the
-- bins actually built, and a value whose bounds exceed drift.binned_max_error is computed
-- exactly; one near the middle keeps the bins narrow, which keeps the bounds small.
WITH sample AS (
    SELECT {reference_value} AS value
    FROM {predictions} p
    WHERE {model_reference_window}
      AND (CAST(:reference_version AS {text_type}) IS NULL
           OR CAST(p.{model_version} AS {text_type}) = CAST(:reference_version AS {text_type}))
      AND {reference_value} - {reference_value} = 0
    ORDER BY p.{predicted_at}, {reference_value}
    LIMIT :sample_size
),
ranked AS (
    SELECT value,
           ROW_NUMBER() OVER (ORDER BY value) AS position,
           COUNT(*) OVER () AS values_in_sample
    FROM sample
)
-- The lower median: the value at position ceil(count / 2).
SELECT value AS center
FROM ranked
WHERE 2 * position - 1 <= values_in_sample AND 2 * position >= values_in_sample
