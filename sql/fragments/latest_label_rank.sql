-- Fragment: ranks a prediction's labels, newest first, so that label_rank < 2 keeps the latest.
-- A prediction is one (prediction_id, model_version): shadow or canary versions may score the
-- same request id, and each keeps its own row. Ties on labeled_at (exact duplicate rows from
-- at-least-once ingestion) are broken by the label text, so exactly one row survives.
-- Filter with "label_rank < 2", not "= 1": PostgreSQL would otherwise expect 0.5% of the
-- rows to survive, and plan for that.
ROW_NUMBER() OVER (
                PARTITION BY p.{prediction_id}, p.{model_version}
                ORDER BY l.{labeled_at} DESC, {label_text} DESC
            ) AS label_rank
