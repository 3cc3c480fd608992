-- Fragment: score_ranks with no rows, for jobs without a score (multiclass, or no score column).
score_ranks AS (
    SELECT CAST(NULL AS {text_type}) AS model_version, CAST(NULL AS BIGINT) AS positives,
           CAST(NULL AS BIGINT) AS negatives, CAST(NULL AS BIGINT) AS twice_u
    WHERE 1 = 0
)
