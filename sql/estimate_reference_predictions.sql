-- Fragment (estimate): the calibration reference when it is the model's own predictions:
-- those with predicted_at in [:reference_start, :reference_end) (of one version when
-- :reference_version is set) that had a label before :labels_as_of, the latest label winning.
-- {class_score_list} adds a multiclass job's per-class probabilities (empty for a binary job).
reference_rows AS (
    SELECT model_version, score, label{class_score_list}
    FROM {labelled_reference}
)
