-- Fragment (estimate): the calibration reference when it is a table or view (a labelled
-- hold-out set, say) with the job's score and label column names; one map for every version.
-- {reference_class_scores} adds a multiclass job's per-class probabilities
-- (", <expr> AS score_<k>" per class; empty for a binary job).
reference_rows AS (
    SELECT CAST(NULL AS {text_type}) AS model_version, {reference_score} AS score,
           {reference_label} AS label{reference_class_scores}
    FROM {reference_table} r
)
