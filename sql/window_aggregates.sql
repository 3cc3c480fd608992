-- Everything the core metrics, the label delays and the latency histogram need for one job and
-- window, in one statement. Each row is one of four kinds (row_kind), so only a few dozen small rows leave
-- the database:
--   cell     a confusion cell per (model_version, label, predicted_label) of the label-delay
--            population ({population_rows}, which holds the window). Its window columns count
--            the window's predictions alone: label IS NULL for predictions without a label yet,
--            so the cells also give the coverage counts. The score sums give log loss and Brier
--            score (probabilities clipped to [:eps, 1 - :eps] for the logarithms, as
--            scikit-learn does); min/max let the caller refuse scores outside [0, 1]. A cell of
--            the population with no prediction in the window has predictions = 0.
--            {cell_counts} adds more counts per cell (evaljobs/db/source.py's CellCounts):
--            the label delays' over the whole look-back (population, labelled, the sum and minimum
--            of the delays, one CUMULATIVE histogram count per bound, and per multiple k of
--            label_delay how many predictions are due and how many of those were labelled within
--            k x label_delay: evaljobs/quality/label_delay.py), and the latency histogram's over
--            the window (evaljobs/quality/latency.py); their modules add them up per version.
--   ranks    per version: positives, negatives and twice the Mann-Whitney U over the window's
--            labelled, scored predictions, for an exact, tie-aware ROC AUC = twice_u / (2 * P * N).
--   total    per version: predictions up to the window's end (a counter that never resets).
--   orphans  labels that arrived in [:arrived_from, :labels_as_of) for prediction ids that
--            match no prediction at all.
-- The cells group by plain columns only, so PostgreSQL estimates a few dozen groups and hashes
-- them in parallel (a delay bucket or a window flag among the keys is an expression over
-- predicted_at, estimated at one group per row: the plan became a sort of the whole population
-- on disk, 4x slower; EXPLAIN ANALYZE, 10M rows).
-- {score_ranks} is sql/score_ranks.sql for binary jobs with a score (population_rows is then
-- referenced twice, and PostgreSQL computes it once), else sql/score_ranks_skipped.sql, so
-- that other jobs keep a single, parallel pass over the join.
WITH {population_rows},
confusion_cells AS (
    SELECT
        model_version,
        label,
        predicted_label,
        COUNT(CASE WHEN in_window = 1 THEN 1 END) AS predictions,
        COUNT(CASE WHEN in_window = 1 AND label IS NOT NULL THEN score END) AS scored,
        SUM(CASE WHEN in_window = 1 AND label IS NOT NULL THEN LN(CASE WHEN score < :eps THEN :eps WHEN score > 1 - :eps THEN 1 - :eps ELSE score END) END) AS sum_log_score,
        SUM(CASE WHEN in_window = 1 AND label IS NOT NULL THEN LN(1 - CASE WHEN score < :eps THEN :eps WHEN score > 1 - :eps THEN 1 - :eps ELSE score END) END) AS sum_log_one_minus_score,
        -- PostgreSQL raises on float underflow, so squares below 1e-300 are summed as the 0 they round to.
        SUM(CASE WHEN in_window = 1 AND label IS NOT NULL THEN CASE WHEN ABS(score) < 1e-150 THEN 0.0 ELSE score * score END END) AS sum_score_squared,
        SUM(CASE WHEN in_window = 1 AND label IS NOT NULL THEN (1 - score) * (1 - score) END) AS sum_one_minus_score_squared,
        MIN(CASE WHEN in_window = 1 THEN score END) AS min_score,
        MAX(CASE WHEN in_window = 1 THEN score END) AS max_score{cell_counts}
    FROM population_rows
    GROUP BY model_version, label, predicted_label
),
{score_ranks},
window_counts AS (  -- the window's predictions per version, for {version_totals}
    SELECT model_version, predictions FROM confusion_cells
),
{version_totals},
{orphan_labels}
SELECT 'cell' AS row_kind, model_version, label, predicted_label, predictions, scored,
       sum_log_score, sum_log_one_minus_score, sum_score_squared, sum_one_minus_score_squared,
       min_score, max_score,
       CAST(NULL AS BIGINT) AS positives, CAST(NULL AS BIGINT) AS negatives, CAST(NULL AS BIGINT) AS twice_u{cell_count_columns}
FROM confusion_cells
UNION ALL
SELECT 'ranks', model_version, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       positives, negatives, twice_u{cell_count_nulls}
FROM score_ranks
UNION ALL
SELECT 'total', model_version, NULL, NULL, predictions, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL{cell_count_nulls}
FROM totals
UNION ALL
SELECT 'orphans', NULL, NULL, NULL, predictions, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL{cell_count_nulls}
FROM orphans
