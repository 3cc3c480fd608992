-- Fragment (estimate): the aggregates of one cell of scored predictions (a GROUP BY over rows
-- with `positive` 0/1 and `score`): rows, positives, the sum of the scores, the sum of their
-- Bernoulli variances score * (1 - score), and the range of the scores (checked to be in [0, 1]).
-- PostgreSQL raises on float underflow, so products below ~1e-150 are summed as the 0 they round to.
COUNT(*) AS predictions,
    SUM(positive) AS positives,
    SUM(score) AS sum_score,
    SUM(CASE WHEN ABS(score) < 1e-150 THEN 0.0 ELSE score * (1 - score) END) AS sum_score_variance,
    MIN(score) AS min_score,
    MAX(score) AS max_score
