-- Fragment: a label's delay in seconds (a number), from the columns labeled_at and predicted_at
-- of the label-delay rows (sql/fragments/label_delay_rows.sql). sql/label_delays.sql uses it in
-- every one of its ~20 aggregates, and the engines evaluate it once per use: PostgreSQL spells
-- it cheaply (sql/postgresql/fragments/delay_seconds.sql).
{labeled_epoch} - {predicted_epoch}
