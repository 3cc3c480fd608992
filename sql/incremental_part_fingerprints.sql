-- The incremental parts' fingerprints (sql/incremental_part_counts.sql) without counting every
-- part of the label-delay look-back each run (evaljobs/ops/incremental/): the parts
-- [:verified_from, :verified_to), whose counts the previous run stored, are checked with ONE
-- aggregate -- their predictions, the latest predicted_at, and the sum of each prediction's part
-- number from :first_part -- against the stored counts (a late prediction changes the count, a
-- removed one too, one moved to another part the sum); the row with part NULL. The parts after
-- them, [:verified_to, :window_end) (the newest, where predictions still arrive), are counted
-- one by one. Reads the predictions alone, index ranges on (model_name, predicted_at).
SELECT CAST(NULL AS BIGINT) AS part, COUNT(*) AS predictions, MAX(predicted_at) AS last_predicted_at,
       SUM(part_index) AS part_sum
FROM (
    SELECT CAST({part_number} - :first_part AS INTEGER) AS part_index, predicted_at
    FROM (
        SELECT p.{predicted_at} AS predicted_at
        FROM {predictions} p
        WHERE p.{model_name} = :model
          AND p.{predicted_at} >= :verified_from
          AND p.{predicted_at} < :verified_to
    ) verified_times
) verified
UNION ALL
SELECT part, COUNT(*) AS predictions, MAX(predicted_at) AS last_predicted_at, 0 AS part_sum
FROM (
    SELECT {part_number} AS part, predicted_at
    FROM (
        SELECT p.{predicted_at} AS predicted_at
        FROM {predictions} p
        WHERE p.{model_name} = :model
          AND p.{predicted_at} >= :verified_to
          AND p.{predicted_at} < :window_end
    ) recent_times
) numbered
GROUP BY part
