-- SQLite only: every timestamp a window reads, checked row by row. SQLite compares the window
-- bounds with these columns as text, so each must be UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]'
-- (sql/sqlite/time_extremes.sql catches the forms that sort outside every window: numbers,
-- month names). Here: the window's predictions of the model, and the labels that arrived in
-- [:arrived_from, :labels_as_of), so each row is checked in the run whose window its text falls
-- in. Both are index-only range scans (predictions (model_name, predicted_at), labels
-- (labeled_at)): the GLOB and length tests read only the indexed column.
SELECT pc.bad AS predicted_at_count, pc.example AS predicted_at_example,
       lc.bad AS labeled_at_count, lc.example AS labeled_at_example
FROM (
    SELECT COUNT(*) AS bad, MIN(p.{predicted_at}) AS example
    FROM {predictions} p
    WHERE {model_window}
      AND NOT (typeof(p.{predicted_at}) = 'text'
               AND p.{predicted_at} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]*'
               AND (length(p.{predicted_at}) = 19
                    OR (length(p.{predicted_at}) BETWEEN 21 AND 26
                        AND substr(p.{predicted_at}, 20, 1) = '.'
                        AND substr(p.{predicted_at}, 21) NOT GLOB '*[^0-9]*')))
) pc
CROSS JOIN (
    SELECT COUNT(*) AS bad, MIN(l.{labeled_at}) AS example
    FROM {labels} l
    WHERE l.{labeled_at} >= :arrived_from
      AND l.{labeled_at} < :labels_as_of
      AND NOT (typeof(l.{labeled_at}) = 'text'
               AND l.{labeled_at} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]*'
               AND (length(l.{labeled_at}) = 19
                    OR (length(l.{labeled_at}) BETWEEN 21 AND 26
                        AND substr(l.{labeled_at}, 20, 1) = '.'
                        AND substr(l.{labeled_at}, 21) NOT GLOB '*[^0-9]*')))
) lc
