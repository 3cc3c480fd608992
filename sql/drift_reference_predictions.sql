-- Fragment (drift): the reference rows when the reference is the model's own predictions:
-- those with predicted_at in [:reference_start, :reference_end) (a baseline range, the
-- previous window, or the evaluated window itself for a champion version), of one version
-- when :reference_version is set.
reference_rows AS (
    SELECT {reference_value} AS value
    FROM {predictions} p
    WHERE {model_reference_window}
      AND (CAST(:reference_version AS {text_type}) IS NULL
           OR CAST(p.{model_version} AS {text_type}) = CAST(:reference_version AS {text_type}))
)
