-- sql/incremental_part_fingerprints.sql for the parts of label ARRIVAL time (the orphan parts'
-- fingerprints, sql/incremental_label_counts.sql): the arrival parts [:verified_from,
-- :verified_to) that the previous run counted are checked with one aggregate (labels, latest
-- labeled_at, sum of part numbers from :first_part; the row with part NULL), those since, up to
-- :labels_as_of, counted one by one. An index range on labels(labeled_at). The part number reads
-- a column named predicted_at (sql/fragments/part_number.sql), so the arrival time has that name.
SELECT CAST(NULL AS BIGINT) AS part, COUNT(*) AS labels, MAX(predicted_at) AS last_labeled_at,
       SUM(part_index) AS part_sum
FROM (
    SELECT CAST({part_number} - :first_part AS INTEGER) AS part_index, predicted_at
    FROM (
        SELECT l.{labeled_at} AS predicted_at
        FROM {labels} l
        WHERE l.{labeled_at} >= :verified_from
          AND l.{labeled_at} < :verified_to
    ) verified_arrivals
) verified
UNION ALL
SELECT part, COUNT(*) AS labels, MAX(predicted_at) AS last_labeled_at, 0 AS part_sum
FROM (
    SELECT {part_number} AS part, predicted_at
    FROM (
        SELECT l.{labeled_at} AS predicted_at
        FROM {labels} l
        WHERE l.{labeled_at} >= :verified_to
          AND l.{labeled_at} < :labels_as_of
    ) recent_arrivals
) numbered
GROUP BY part
