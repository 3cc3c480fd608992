-- The job row's final state, in the same transaction as the version rows. Matching on
-- claimed_by makes a run whose claim expired and was taken over write nothing. With
-- :keep_push = 1 (a backfill, which never pushes) the window's push state stays as it was, so
-- a window the gateway has seen still supersedes older pending ones.
UPDATE {results}
SET model = :model, evaluated_at = :evaluated_at, labels_as_of = :labels_as_of, origin = :origin,
    status = :status, claimed_by = NULL, claimed_at = NULL,
    started_at = :started_at, finished_at = :finished_at, duration_seconds = :duration_seconds,
    evaluations = evaluations + 1,
    push_status = CASE WHEN :keep_push = 1 THEN push_status ELSE :push_status END,
    push_attempts = CASE WHEN :keep_push = 1 THEN push_attempts ELSE 0 END,
    pushed_at = CASE WHEN :keep_push = 1 THEN pushed_at END,
    push_error = CASE WHEN :keep_push = 1 THEN push_error END,
    window_predictions = :window_predictions, labeled_predictions = :labeled_predictions,
    accuracy = NULL, macro_recall = NULL, macro_f1 = NULL, roc_auc = NULL,
    error = :error, result = :result, exposition = :exposition
WHERE job = :job AND row_kind = 'job' AND model_version = ''
  AND window_start = :window_start AND window_end = :window_end
  AND claimed_by = :claimed_by
