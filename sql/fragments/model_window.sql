-- Fragment: the job's model and the predictions made in [:{bounds}_start, :{bounds}_end).
-- Included as {model_window} (bounds: window) and {model_reference_window} (bounds: reference).
p.{model_name} = :model
      AND p.{predicted_at} >= :{bounds}_start
      AND p.{predicted_at} < :{bounds}_end
