-- Fragment (drift): no reference rows, for a reference that is a version of the evaluated
-- window (kind: version). Its rows are read with the window's, in the same scan, and come
-- back as that version's groups (evaluate reads the reference from them): the window is read
-- once instead of twice. The branch is kept, empty, rather than dropped so that the queries
-- keep their UNION ALL: PostgreSQL 15 then estimates the groups at a tenth of the rows and
-- aggregates in parallel, where for the bare window it estimates a group per distinct value of
-- the feature (millions) and aggregates serially (EXPLAIN on the 10M-row bench data).
reference_rows AS (
    SELECT CAST(NULL AS {reference_type}) AS value
    FROM {predictions} p
    WHERE 1 = 0
)
