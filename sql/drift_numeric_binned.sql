-- Numeric drift summaries of one value in ONE pass over the reference and the window, for
-- samples too large for the exact sort of drift_numeric.sql: a fine histogram per version
-- (and for the reference), grouped by a hash aggregate over a few thousand bins, no sort. A
-- version reference has no rows of its own here (drift_reference_in_window.sql): it is one of
-- the window's versions, and the caller takes the reference's histogram from its groups.
--
-- * Bins are logarithmic in the distance d = value - :center from a centre inside the
--   reference (drift_numeric_center_sample.sql's median of a sample of it, or
--   drift_numeric_center.sql's mean), as DDSketch's are in |value|: a value with |d| >= :min_magnitude
--   goes to bin 1 + round((ln|d| - ln(:min_magnitude)) * :scale), negated (-1 - ...) below the
--   centre, so a bin spans about 1 / :scale of its distance from the centre; nearer values share
--   bin 0. Bin numbers grow with the value, so the bins are in value order, and the widths
--   follow the data's own scale and offset. (PostgreSQL and DuckDB round the cast to BIGINT,
--   SQLite truncates: either is monotone, and nothing below depends on the exact edges.)
-- * Each bin returns its count and its smallest and largest value: the caller has the exact
--   empirical CDFs at every bin's end and bounds what happens inside a bin by the bin's actual
--   span (a bin holding one distinct value adds no error at all).
-- * Sums of d and d * d per bin give the reference's mean and standard deviation, well
--   conditioned because d is centred (near the mean). Squares below 1e-300 are summed as the 0 they round to
--   (PostgreSQL raises on underflow); |d| beyond 1e150 gets no square (NULL) and the caller
--   computes exactly instead.
-- * state: 0 a finite value, 1 NULL, 2 NaN or an infinity (x - x is 0 only for a finite x;
--   it is NaN on PostgreSQL and NULL on SQLite otherwise); only counts are read for 1 and 2.
WITH {current_rows},
{reference_rows},
both_samples AS (
    SELECT 1 AS is_reference, CAST(NULL AS {text_type}) AS model_version, value
    FROM reference_rows
    UNION ALL
    SELECT 0 AS is_reference, model_version, value
    FROM current_rows
),
{fine_bins}
