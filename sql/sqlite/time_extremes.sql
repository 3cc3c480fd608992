-- SQLite only: the earliest and latest timestamps of the job's predictions and of the labels.
-- SQLite compares the window bounds with these columns as text, so they must be UTC text in
-- the form 'YYYY-MM-DD HH:MM:SS[.ffffff]'. Epoch numbers sort below all text and 'T'-separated
-- values above ' '-separated ones, so a wrong form shows at the extremes; the indexes on
-- (model_name, predicted_at) and (labeled_at) make this four index look-ups.
SELECT
    (SELECT MIN(p.{predicted_at}) FROM {predictions} p WHERE p.{model_name} = :model) AS first_predicted_at,
    (SELECT MAX(p.{predicted_at}) FROM {predictions} p WHERE p.{model_name} = :model) AS last_predicted_at,
    (SELECT MIN(l.{labeled_at}) FROM {labels} l) AS first_labeled_at,
    (SELECT MAX(l.{labeled_at}) FROM {labels} l) AS last_labeled_at
