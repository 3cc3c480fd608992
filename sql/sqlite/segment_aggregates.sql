-- SQLite has no GROUPING SETS: each window row is paired with each segment (a CROSS JOIN with
-- the segment numbers) and grouped once by (version, segment, value). Same result columns as
-- sql/segment_aggregates.sql, whose comment lists the generated slots; here also
--   {segment_indexes}  SELECT 0 AS segment_index UNION ALL SELECT 1 ...
--   {segment_cases}    WHEN 0 THEN t.segment_0 WHEN 1 THEN t.segment_1 ...
--   {cell_group_keys}  the task's cell keys with a leading comma, or nothing
WITH {task_rows},
segment_rows AS (
    SELECT t.model_version, t.prediction, t.label, s.segment_index,
           CASE s.segment_index {segment_cases} END AS segment_value
    FROM task_rows t
    CROSS JOIN ({segment_indexes}) s
),
value_volumes AS (
    SELECT segment_index, segment_value, COUNT(*) AS predictions
    FROM segment_rows
    GROUP BY segment_index, segment_value
),
{segment_value_ranks},
folded_rows AS (
    SELECT r.model_version, r.prediction, r.label, r.segment_index,
           CASE WHEN v.value_rank <= :max_segment_values THEN r.segment_value ELSE '(other)' END AS segment_value
    FROM segment_rows r
    JOIN value_ranks v ON v.segment_index = r.segment_index AND v.segment_value = r.segment_value
),
cells AS (
    SELECT model_version, segment_index, segment_value, {cell_keys}{measures}
    FROM folded_rows
    GROUP BY model_version, segment_index, segment_value{cell_group_keys}
)
{segment_output}
