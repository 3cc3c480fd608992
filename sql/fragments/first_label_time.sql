-- Fragment: when a prediction's FIRST label arrived (of those before :labels_as_of), beside the
-- latest-label rank of sql/fragments/latest_label_rank.sql and over the same partition, so that
-- one sort serves both. sql/fragments/first_label_time_unique.sql replaces it when the labels
-- table declares one row per prediction id.
MIN(l.{labeled_at}) OVER (PARTITION BY p.{prediction_id}, p.{model_version})
