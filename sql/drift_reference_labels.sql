-- Fragment (drift): the labels of the reference predictions (label drift), labelled ones
-- only, the latest label before :labels_as_of winning (sql/fragments/labelled_reference.sql).
-- {label_value} is the label text, or the text as a number for regression jobs.
reference_rows AS (
    SELECT {label_value} AS value
    FROM {labelled_reference}
)
