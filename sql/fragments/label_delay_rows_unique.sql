-- Fragment (a CTE): sql/fragments/label_delay_rows.sql when the labels table declares one row
-- per prediction id (JobSource.identifiers picks it, as it picks latest_label_unique.sql): a
-- prediction then joins at most one label, which is its first, so there is nothing to group.
-- The grouped form sorted the whole look-back population by prediction id (a merge join and
-- a GROUP BY of every prediction); this is one parallel hash join. Each prediction row is one
-- row here, as in sql/window_rows.sql with such a table.
label_delay_rows AS (
    SELECT
        model_version,
        predicted_at,
        {delay_seconds} AS delay_seconds
    FROM (
        SELECT
            CAST(p.{model_version} AS {text_type}) AS model_version,
            p.{predicted_at} AS predicted_at,
            l.{labeled_at} AS labeled_at
        FROM {predictions} p
        LEFT JOIN {label_join}
        WHERE p.{model_name} = :model
          AND p.{predicted_at} >= :lookback_start
          AND p.{predicted_at} < :window_end
    ) first_labels
)
