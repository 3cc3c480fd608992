-- Fragment: used instead of latest_label_rank.sql when the labels table declares one row per
-- prediction id (a primary key or unique constraint/index on the label's prediction_id alone):
-- a prediction then joins at most one label, so there is nothing to rank, and the window's
-- join stays a single parallel hash join instead of a sort of the whole window (the ranking
-- took ~5x the join's own time at 1M rows). Same column, so "label_rank < 2" keeps every row.
1 AS label_rank
