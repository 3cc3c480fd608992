-- One version row of a finished window (its push state carried over by a backfill, see finish_job.sql).
INSERT INTO {results} (
    job, row_kind, model_version, window_start, window_end, model, evaluated_at, labels_as_of,
    origin, status, started_at, finished_at, duration_seconds, evaluations, push_status,
    push_attempts, pushed_at, push_error,
    window_predictions, labeled_predictions, accuracy, macro_recall, macro_f1, roc_auc,
    error, result, exposition
) VALUES (
    :job, 'version', :model_version, :window_start, :window_end, :model, :evaluated_at, :labels_as_of,
    :origin, :status, :started_at, :finished_at, :duration_seconds, :evaluations, :push_status,
    :push_attempts, :pushed_at, :push_error,
    :window_predictions, :labeled_predictions, :accuracy, :macro_recall, :macro_f1, :roc_auc,
    :error, :result, :exposition
)
