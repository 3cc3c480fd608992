-- Fragment (a join): keeps the predictions whose id is in the including query's `changed` CTE
-- (sql/incremental_label_changes.sql); sql/fragments/part_rows.sql's {changed_only}.
JOIN changed c ON c.prediction_id = p.{prediction_id}
