-- Benchmark data for bench/drift_memory.py, made entirely in PostgreSQL (generate_series):
-- 2 * :rows fraud predictions spread evenly over [:start, :start + 2 * :window_seconds), so the
-- first :rows fill the previous window and the last :rows the evaluated one. One in five is
-- the canary v3-canary, whose amounts are scaled by 2.5 in the evaluated window (drift).
-- Values are rounded like real data: amount to cents, the score to 6 decimals (close to one
-- distinct value per row: the hard case for the exact KS), account age to 0.1 day.
INSERT INTO predictions (prediction_id, model_name, model_version, predicted_at, predicted_label,
                         score, latency_seconds, amount, country, account_age_days)
SELECT
    'b-' || g,
    'fraud',
    version,
    CAST(:start AS TIMESTAMP WITH TIME ZONE) + (g - 1) * (:window_seconds / CAST(:rows AS DOUBLE PRECISION)) * INTERVAL '1 second',
    CASE WHEN score >= 0.5 THEN '1' ELSE '0' END,
    score,
    0.045,
    round(CAST(exp(3.5 + 0.9 * normal) * CASE WHEN version = 'v3-canary' AND g > :rows THEN 2.5 ELSE 1 END AS NUMERIC), 2),
    country,
    round(CAST(-400 * ln(1 - uniform) AS NUMERIC), 1)
FROM (
    SELECT
        g,
        CASE WHEN g % 5 = 0 THEN 'v3-canary' ELSE 'v2' END AS version,
        round(CAST(random() AS NUMERIC), 6) AS score,
        sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS normal,
        (ARRAY['US', 'US', 'US', 'GB', 'DE', 'DE', 'FR', 'IN', 'IN', 'IN'])[1 + floor(random() * 10)::int] AS country,
        random() AS uniform
    FROM generate_series(1, 2 * :rows) g
) generated;

-- 80% of the predictions get a label three hours later; 12% of the labels are positive.
INSERT INTO labels (prediction_id, label, labeled_at)
SELECT prediction_id, CASE WHEN random() < 0.12 THEN '1' ELSE '0' END, predicted_at + INTERVAL '3 hours'
FROM predictions
WHERE random() < 0.8;

ANALYZE predictions;
ANALYZE labels
