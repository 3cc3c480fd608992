-- Categorical drift summaries of one value (a feature column, the predicted label or the
-- label): category counts of the reference and of every version in the window. NULL is a
-- category of its own here (its count is the NULL count). At most :row_limit rows leave the
-- database, largest first; distinct_values says how many categories there were in all, so
-- the caller can refuse a column with too many to be categorical.
WITH {current_rows},
{reference_rows},
counts AS (
    SELECT 1 AS is_reference, CAST(NULL AS {text_type}) AS model_version, value, COUNT(*) AS n
    FROM reference_rows
    GROUP BY value
    UNION ALL
    SELECT 0 AS is_reference, model_version, value, COUNT(*) AS n
    FROM current_rows
    GROUP BY model_version, value
)
SELECT
    is_reference,
    model_version,
    value,
    n,
    (SELECT COUNT(DISTINCT value) FROM counts) AS distinct_values
FROM counts
ORDER BY is_reference DESC, n DESC, value
LIMIT :row_limit
