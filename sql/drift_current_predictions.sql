-- Fragment (drift): the window's predictions of the job's model, one row per prediction with
-- its version and the compared value ({current_value}: a feature column or a model output,
-- cast to the kind's type by the caller). NULL values are kept: the queries count them.
-- Without the rows of :excluded_version (when set): a champion compared with its challengers
-- is the reference, and summarising its rows a second time as a window version was half
-- again the work of a three-version window (ReferenceRows.excluded_version).
current_rows AS (
    SELECT CAST(p.{model_version} AS {text_type}) AS model_version, {current_value} AS value
    FROM {predictions} p
    WHERE {model_window}
      AND (CAST(:excluded_version AS {text_type}) IS NULL
           OR CAST(p.{model_version} AS {text_type}) <> CAST(:excluded_version AS {text_type}))
)
