-- Fragment: the CTEs that end in score_ranks, per version of the window (population_rows of
-- sql/window_aggregates.sql): positives, negatives and twice the
-- Mann-Whitney U over labelled, scored predictions (exact and tie-aware: a tie counts one half).
-- Count positives and negatives per distinct score, accumulate the negatives below each score,
-- and sum pos * (2 * negatives_below + negatives_tied); ROC AUC = twice_u / (2 * P * N).
per_score AS (
    SELECT
        model_version,
        score,
        SUM(CASE WHEN label = :positive_label THEN 1 ELSE 0 END) AS positives,
        SUM(CASE WHEN label = :positive_label THEN 0 ELSE 1 END) AS negatives
    FROM population_rows
    WHERE in_window = 1 AND label IS NOT NULL AND score IS NOT NULL
    GROUP BY model_version, score
),
ranked AS (
    SELECT
        model_version,
        positives,
        negatives,
        COALESCE(SUM(negatives) OVER (
            PARTITION BY model_version ORDER BY score
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ), 0) AS negatives_below
    FROM per_score
),
score_ranks AS (
    SELECT
        model_version,
        SUM(positives) AS positives,
        SUM(negatives) AS negatives,
        SUM(positives * (2 * negatives_below + negatives)) AS twice_u
    FROM ranked
    GROUP BY model_version
)
