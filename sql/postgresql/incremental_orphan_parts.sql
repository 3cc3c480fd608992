-- sql/incremental_orphan_parts.sql on PostgreSQL: OFFSET 0 keeps the NOT EXISTS a per-label index
-- probe of the predictions' key. Pulled up into an anti-join, the planner hashed every prediction
-- id of the table (a full scan, ~0.3 s at 1M rows) to check an hour of labels (~5 ms as probes).
SELECT part, COUNT(*) AS orphans
FROM (
    SELECT {part_number} AS part
    FROM (
        SELECT l.{labeled_at} AS predicted_at
        FROM {labels} l
        WHERE l.{labeled_at} >= :arrived_from
          AND l.{labeled_at} < :labels_as_of
          AND NOT EXISTS (
              SELECT 1 FROM {predictions} p WHERE p.{prediction_id} = l.{label_prediction_id} OFFSET 0
          )
    ) orphans
) numbered
GROUP BY part
