-- Fragment: the number of the incremental part (evaljobs/ops/incremental/) that holds a
-- prediction made at predicted_at (a column of the including derived table): parts are
-- :part_seconds long and start at :part_offset + n * :part_seconds seconds since 1970.
CAST(FLOOR(({predicted_epoch} - :part_offset) / :part_seconds) AS BIGINT)
