-- Fragment (drift): the reference rows when the reference is a table or view (e.g. the
-- training set): every row, the value read from the column of the same name.
reference_rows AS (
    SELECT {reference_value} AS value
    FROM {reference_table} r
)
