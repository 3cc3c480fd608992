-- Rows a window reads but cannot use as they stand, counted so that the run can say so (issue
-- 11, risk 8). One statement for every task; {compared_prediction} is the prediction as the
-- task compares it (class text, or the regression value).
--   conflicts    per version: prediction ids with several rows in the window that predict
--                different values. One (prediction_id, model_version) is one prediction, so which
--                row counts is not defined. A hash aggregate over the window's predictions
--                (MIN <> MAX, not COUNT(DISTINCT), so that PostgreSQL hashes instead of sorting).
--                {look_for_conflicts} is 0 = 1 when the table declares the pair unique (the
--                reference schema's primary key): the planner then skips the scan.
--   null_labels  label rows that arrived in [:arrived_from, :labels_as_of) whose label is NULL: a
--                prediction whose latest label row is one counts as not labelled yet. A range
--                scan of labels (labeled_at), like the orphan-label count.
WITH conflicts AS (
    SELECT model_version, COUNT(*) AS found, MIN(prediction_id) AS example
    FROM (
        SELECT CAST(p.{model_version} AS {text_type}) AS model_version,
               CAST(p.{prediction_id} AS {text_type}) AS prediction_id
        FROM {predictions} p
        WHERE {look_for_conflicts}
          AND {model_window}
        GROUP BY CAST(p.{model_version} AS {text_type}), CAST(p.{prediction_id} AS {text_type})
        HAVING MIN({compared_prediction}) <> MAX({compared_prediction})
    ) d
    GROUP BY model_version
),
null_labels AS (
    SELECT COUNT(*) AS found
    FROM {labels} l
    WHERE l.{labeled_at} >= :arrived_from
      AND l.{labeled_at} < :labels_as_of
      AND l.{label} IS NULL
)
SELECT 'conflicts' AS row_kind, model_version, found, example FROM conflicts
UNION ALL
SELECT 'null_labels', NULL, found, NULL FROM null_labels
