INSERT INTO {results} (
    job, row_kind, model_version, window_start, window_end, model, evaluated_at, labels_as_of,
    origin, status, started_at, finished_at, duration_seconds, evaluations, push_status,
    window_predictions, labeled_predictions, accuracy, macro_recall, macro_f1, roc_auc,
    error, result, exposition
) VALUES (
    :job, 'version', :model_version, :window_start, :window_end, :model, :evaluated_at, :labels_as_of,
    :origin, :status, :started_at, :finished_at, :duration_seconds, :evaluations, :push_status,
    :window_predictions, :labeled_predictions, :accuracy, :macro_recall, :macro_f1, :roc_auc,
    :error, :result, :exposition
)
