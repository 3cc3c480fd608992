-- The fingerprint of a baseline drift reference (the model's predictions in
-- [:reference_start, :reference_end), any version): their count and latest predicted_at, an index
-- range on (model_name, predicted_at). While it holds, the stored reference summary is reused
-- (evaljobs/ops/incremental/).
SELECT COUNT(*) AS n, MAX(p.{predicted_at}) AS last_at
FROM {predictions} p
WHERE {model_reference_window}
