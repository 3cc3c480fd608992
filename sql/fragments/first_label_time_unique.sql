-- Fragment: sql/fragments/first_label_time.sql when the labels table declares one row per
-- prediction id: the only label is the first.
l.{labeled_at}
