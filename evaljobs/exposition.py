"""Result records -> Prometheus metric families. The one place metric names are decided.

Every sink renders the same families: the Pushgateway sink pushes them per group, the
text-file sink adds the grouping labels to each sample, the OpenMetrics sink adds timestamps.
Names follow the Prometheus conventions: ``_ratio`` for 0..1, ``_seconds``, ``_total`` for
counters, ``_timestamp_seconds`` for instants; no generated name parts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Callable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from evaljobs.records import FeatureDrift, Histogram, JobResult, LabelDelay, SegmentSlice, VersionResult

#: (name, help) of every metric family evaljobs can emit; the README table is checked against it.
FAMILIES: dict[str, str] = {
    "model_accuracy_ratio": "Share of labelled predictions in the window that were correct.",
    "model_precision_ratio": "Precision of one class (zero_division=0).",
    "model_recall_ratio": "Recall of one class (zero_division=0).",
    "model_f1_ratio": "F1 score of one class (zero_division=0).",
    "model_macro_precision_ratio": "Unweighted mean of per-class precision.",
    "model_macro_recall_ratio": "Unweighted mean of per-class recall.",
    "model_macro_f1_ratio": "Unweighted mean of per-class F1.",
    "model_weighted_precision_ratio": "Support-weighted mean of per-class precision.",
    "model_weighted_recall_ratio": "Support-weighted mean of per-class recall.",
    "model_weighted_f1_ratio": "Support-weighted mean of per-class F1.",
    "model_confusion_predictions": "Labelled predictions in the window by actual and predicted class.",
    "model_folded_classes": "Classes beyond max_classes, summed into class=\"(other)\" in the per-class and confusion series.",
    "model_window_predictions": "Predictions in the evaluated window.",
    "model_labeled_predictions": "Predictions in the window whose label had arrived.",
    "model_label_coverage_ratio": "Labelled predictions divided by all predictions in the window.",
    "model_roc_auc_ratio": "Area under the ROC curve of the positive-class score (exact, tie-aware).",
    "model_log_loss": "Binary cross-entropy of the positive-class score.",
    "model_brier_score": "Mean squared error of the positive-class score.",
    "model_scored_predictions": "Labelled predictions in the window that have a score.",
    "model_predictions": "Predictions of this version up to the window's end (cumulative).",
    "evaljobs_last_success_timestamp_seconds": "When this group was last evaluated successfully.",
    "evaljobs_run_duration_seconds": "How long the evaluation of this job took.",
    "evaljobs_window_end_timestamp_seconds": "End of the evaluated window of predictions.",
    "evaljobs_window_start_timestamp_seconds": "Start of the evaluated window of predictions.",
    "evaljobs_orphan_labels": "Labels that arrived during the last window length for unknown prediction ids.",
    "evaljobs_evaluated_versions": "Model versions that had predictions in the evaluated window.",
    "evaljobs_null_labels": "Label rows with a NULL label that arrived during the last window length (counted as not labelled yet).",
    "evaljobs_conflicting_predictions": "Prediction ids with rows in the window that predict different values for one version.",
    # drift (issue 3), see drift_families below
    "model_drift_score": "Drift of a feature against the reference by one method (PSI, Jensen-Shannon, normed Wasserstein, KS or chi-square statistic).",
    "model_drift_p_value": "p-value of a drift test (ks, chi_square) of a feature against the reference.",
    "model_drift_detected": "1 when the feature's deciding method crossed its threshold, else 0.",
    "model_drift_threshold": "Threshold of the method that decides a feature's drift (p-value for tests, distance otherwise).",
    "model_drift_reference_predictions": "Rows in the drift reference; the reference label says which kind it is.",
    "model_feature_null_ratio": "NULL values of a feature among the version's predictions in the window.",
    "evaljobs_schedule_interval_seconds": "Longest gap between two scheduled runs of the job (alert at twice it).",
    # latency (evaljobs/quality/latency.py), see latency_families below
    "model_inference_latency_seconds": (
        "Time the model took per prediction, over the predictions of the evaluated window "
        "(the window's histogram, replaced at each run: use it without rate())."
    ),
    "model_inference_latency_missing_predictions": (
        "Predictions in the window without a latency (NULL), left out of the latency histogram."
    ),
    # regression (issue 12), see regression_families below; errors are in the label's unit
    "model_mean_absolute_error": "Mean absolute error of the labelled predictions in the window (label's unit).",
    "model_mean_squared_error": "Mean squared error of the labelled predictions in the window.",
    "model_root_mean_squared_error": "Root mean squared error of the labelled predictions in the window (label's unit).",
    "model_mean_absolute_percentage_error_ratio": "Mean absolute percentage error as a fraction, over labels that are not 0.",
    "model_zero_label_predictions": "Labelled predictions whose label is 0, left out of the MAPE.",
    "model_r2_score": "Coefficient of determination (R2) of the labelled predictions in the window.",
    "model_mean_error": "Mean of prediction - label (bias; positive means over-prediction).",
    "model_prediction_error": "Signed error prediction - label of the window's labelled predictions (the window's histogram: use it without rate()).",
    # estimated performance (issue 13), see estimate_families below
    "model_estimated_accuracy_ratio": "Accuracy of the recent window expected from calibrated scores (CBPE), before labels.",
    "model_estimated_precision_ratio": "Precision of a class expected from calibrated scores (CBPE; binary: the positive class).",
    "model_estimated_recall_ratio": "Recall of a class expected from calibrated scores (CBPE; binary: the positive class).",
    "model_estimated_f1_ratio": "F1 of a class expected from calibrated scores (CBPE; binary: the positive class).",
    "model_estimated_macro_precision_ratio": "Multiclass: unweighted mean over classes of the estimated precision (CBPE).",
    "model_estimated_macro_recall_ratio": "Multiclass: unweighted mean over classes of the estimated recall (CBPE).",
    "model_estimated_macro_f1_ratio": "Multiclass: unweighted mean over classes of the estimated F1 (CBPE).",
    "model_estimated_roc_auc_ratio": "ROC AUC of the recent window expected from calibrated scores (CBPE; multiclass: mean of one-vs-rest AUCs).",
    "model_estimated_standard_error_ratio": "Standard error of an estimated metric (sampling and calibration-map uncertainty).",
    "model_estimated_lower_ratio": "Lower bound of an estimated metric's interval (estimate.confidence, default 95%).",
    "model_estimated_upper_ratio": "Upper bound of an estimated metric's interval (estimate.confidence, default 95%).",
    "model_estimate_window_predictions": "Scored predictions in the recent window that the estimate covers.",
    "model_estimate_window_start_timestamp_seconds": "Start of the estimated (recent, unlabelled) window.",
    "model_estimate_window_end_timestamp_seconds": "End of the estimated (recent, unlabelled) window.",
    "model_estimate_reference_predictions": "Labelled, scored predictions the calibration map was learned from.",
    "model_estimate_reference_calibration_error_ratio": "Expected calibration error (ECE) of the raw scores on the calibration reference.",
    "model_estimate_accuracy_gap_ratio": "Realised minus estimated accuracy of the labelled window, estimated when it was recent (calibration drift).",
    # segments (issue 12), see segment_families below
    "model_segment_window_predictions": "Predictions in the window with one value of a segment column.",
    "model_segment_labeled_predictions": "Predictions in the window with one value of a segment column whose label had arrived.",
    "model_segment_label_coverage_ratio": "Labelled / all predictions in the window with one value of a segment column.",
    "model_segment_accuracy_ratio": "Accuracy of the labelled predictions with one value of a segment column.",
    "model_segment_macro_f1_ratio": "Macro-averaged F1 of the labelled predictions with one value of a segment column.",
    "model_segment_mean_absolute_error": "Mean absolute error of the labelled predictions with one value of a segment column (regression).",
    "model_segment_root_mean_squared_error": "Root mean squared error of the labelled predictions with one value of a segment column (regression).",
    # label delay (issue 12), see label_delay_families below
    "model_label_delay_seconds": "Delay from prediction to the first label, over the predictions of the look-back before the window's end (replaced at each run: use it without rate()).",
    "model_labeled_within_label_delay_ratio": "Of the look-back's predictions at least multiple x label_delay old, the share labelled within multiple x label_delay.",
    "evaljobs_label_delay_seconds": "The job's configured label_delay (how long it waits for labels).",
    "model_segment_folded_values": "Values of a segment column beyond max_segment_values, summed into segment_value=\"(other)\".",
}


def _gauge(name: str, value: float | None, labels: Mapping[str, str] | None = None) -> GaugeMetricFamily | None:
    if value is None:
        return None
    family = GaugeMetricFamily(name, FAMILIES[name], labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), float(value))
    return family


def _labelled_gauge(name: str, label_names: list[str], rows: Iterable[tuple[list[str], float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, FAMILIES[name], labels=label_names)
    for values, value in rows:
        family.add_metric(values, float(value))
    return family


def version_families(result: VersionResult) -> list[Metric]:
    """The quality metrics of one version in one window (no job-health metrics)."""
    families: list[Metric | None] = [
        _gauge("model_window_predictions", result.window_predictions),
        _gauge("model_labeled_predictions", result.labeled_predictions),
        _gauge("model_label_coverage_ratio", result.label_coverage),
    ]
    total = CounterMetricFamily("model_predictions", FAMILIES["model_predictions"])
    total.add_metric([], float(result.predictions_total))
    families.append(total)
    # Every cell of the matrix is published, zeros included, so sums over it are complete.
    # Beyond max_classes the per-class series are the folded view (records.ClassFold); the
    # accuracy and the averages are always over every class.
    metrics = result.metrics
    if metrics is not None:
        classes, confusion, per_class = result.class_view()
        families.append(_labelled_gauge(
            "model_confusion_predictions", ["actual", "predicted"],
            (([a, p], confusion.get((a, p), 0)) for a in classes for p in classes),
        ))
        families.append(_gauge("model_folded_classes", result.class_fold.folded if result.class_fold else 0))
        families.append(_gauge("model_accuracy_ratio", metrics.accuracy))
        for kind in ("precision", "recall", "f1"):
            families.append(_labelled_gauge(
                f"model_{kind}_ratio", ["class"],
                (([c], getattr(s, kind)) for c, s in per_class.items()),
            ))
            families.append(_gauge(f"model_macro_{kind}_ratio", getattr(metrics.macro, kind)))
            families.append(_gauge(f"model_weighted_{kind}_ratio", getattr(metrics.weighted, kind)))
    if result.scores is not None:
        families.append(_gauge("model_scored_predictions", result.scores.scored))
        families.append(_gauge("model_roc_auc_ratio", result.scores.roc_auc))
        families.append(_gauge("model_log_loss", result.scores.log_loss))
        families.append(_gauge("model_brier_score", result.scores.brier_score))
    for extension in VERSION_EXTENSIONS:
        families.extend(extension(result))
    return [f for f in families if f is not None]


# ---- drift (issue 3) ---------------------------------------------------------------------------
def drift_families(result: VersionResult) -> list[Metric]:
    """A version's drift against the job's reference (nothing when the job has no drift section)."""
    report = result.drift
    if report is None:
        return []
    features: list[FeatureDrift] = list(report.features)
    families: list[Metric] = [
        _labelled_gauge("model_drift_score", ["feature", "method"],
                        (([f.feature, s.method], s.score) for f in features for s in f.statistics)),
        _labelled_gauge("model_drift_p_value", ["feature", "method"],
                        (([f.feature, s.method], s.p_value) for f in features for s in f.statistics
                         if s.p_value is not None)),
        _labelled_gauge("model_drift_detected", ["feature"],
                        (([f.feature], 1.0 if f.detected else 0.0) for f in features if f.detected is not None)),
        _labelled_gauge("model_drift_threshold", ["feature", "method"],
                        (([f.feature, f.method], f.threshold) for f in features
                         if f.detected is not None and f.method is not None and f.threshold is not None)),
        _labelled_gauge("model_feature_null_ratio", ["feature"],
                        (([f.feature], f.null_ratio) for f in features if f.null_ratio is not None)),
    ]
    if report.reference.rows is not None:
        families.append(_labelled_gauge("model_drift_reference_predictions", ["reference"],
                                        [([report.reference.kind], report.reference.rows)]))
    # A family without samples says nothing; leave it out.
    return [f for f in families if f.samples]


# ---- latency ------------------------------------------------------------------------------------
def latency_families(result: VersionResult) -> list[Metric]:
    """The ``model_inference_latency_seconds`` histogram of one version (nothing without a latency column)."""
    latency = result.latency
    if latency is None:
        return []
    histogram = Histogram(latency.bounds, latency.cumulative_counts, latency.count, latency.sum_seconds)
    return [histogram_family("model_inference_latency_seconds", histogram),
            _gauge("model_inference_latency_missing_predictions", latency.missing)]


# ---- estimated performance (issue 13) ----------------------------------------------------------
def estimate_families(result: VersionResult) -> list[Metric]:
    """A version's CBPE of the recent window (nothing when the job has no estimate section)."""
    report = result.estimate
    if report is None:
        return []
    families: list[Metric | None] = [
        _gauge("model_estimate_window_predictions", report.predictions),
        _gauge("model_estimate_window_start_timestamp_seconds", report.window_start.timestamp()),
        _gauge("model_estimate_window_end_timestamp_seconds", report.window_end.timestamp()),
        _gauge("model_estimate_reference_calibration_error_ratio", report.reference_calibration_error),
        _gauge("model_estimate_reference_predictions", report.reference.rows if report.reference else None),
        _gauge("model_estimate_accuracy_gap_ratio", report.check.gap if report.check else None),
    ]
    if not report.predictions:
        return [f for f in families if f is not None]
    # (metric, class, value): accuracy and ROC AUC have no class ("" is an absent label).
    estimated = [("accuracy", "", report.accuracy), ("roc_auc", "", report.roc_auc)]
    estimated += [(name, cls, value) for cls, metrics in report.per_class.items() for name, value in metrics.items()]
    estimated += [(f"macro_{name}", "", value) for name, value in report.macro.items()]
    families.append(_gauge("model_estimated_accuracy_ratio", report.accuracy.value))
    for name, value in report.macro.items():
        families.append(_gauge(f"model_estimated_macro_{name}_ratio", value.value))
    families.append(_gauge("model_estimated_roc_auc_ratio", report.roc_auc.value))
    for name in ("precision", "recall", "f1"):
        families.append(_labelled_gauge(f"model_estimated_{name}_ratio", ["class"], (
            ([cls], metrics[name].value) for cls, metrics in report.per_class.items() if metrics[name].value is not None)))
    for family, field_name in (("model_estimated_standard_error_ratio", "standard_error"),
                               ("model_estimated_lower_ratio", "lower"), ("model_estimated_upper_ratio", "upper")):
        families.append(_labelled_gauge(family, ["metric", "class"], (
            ([name, cls], getattr(value, field_name)) for name, cls, value in estimated
            if getattr(value, field_name) is not None)))
    return [f for f in families if f is not None and f.samples]


#: Functions that add families for a version (drift, latency, ...): a new metric source is one
#: more entry here, not an edit to every sink.
VERSION_EXTENSIONS: list[Callable[[VersionResult], Iterable[Metric]]] = [drift_families, latency_families,
                                                                         estimate_families]



def histogram_family(name: str, histogram: Histogram) -> HistogramMetricFamily:
    """A window's histogram (cumulative bucket counts, +Inf = count) as a Prometheus family."""
    family = HistogramMetricFamily(name, FAMILIES[name])
    buckets = [(floatToGoString(le), float(n)) for le, n in zip(histogram.bounds, histogram.cumulative_counts)]
    buckets.append(("+Inf", float(histogram.count)))
    family.add_metric([], buckets, sum_value=histogram.sum)
    return family


# ---- regression (issue 12) ---------------------------------------------------------------------
def regression_families(result: VersionResult) -> list[Metric]:
    """A regression version's error metrics and signed-error histogram (nothing for other tasks)."""
    families: list[Metric | None] = []
    metrics = result.regression
    if metrics is not None:
        families += [
            _gauge("model_mean_absolute_error", metrics.mae),
            _gauge("model_mean_squared_error", metrics.mse),
            _gauge("model_root_mean_squared_error", metrics.rmse),
            _gauge("model_mean_absolute_percentage_error_ratio", metrics.mape),
            _gauge("model_zero_label_predictions", metrics.zero_labels),
            _gauge("model_r2_score", metrics.r2),
            _gauge("model_mean_error", metrics.mean_error),
        ]
    if result.error_histogram is not None and result.error_histogram.count:
        families.append(histogram_family("model_prediction_error", result.error_histogram))
    return [f for f in families if f is not None]


VERSION_EXTENSIONS.append(regression_families)


# ---- segments (issue 12) -----------------------------------------------------------------------
def segment_families(result: VersionResult) -> list[Metric]:
    """A version's metrics per segment value (labels segment, segment_value), and the folded values."""
    if not result.segments and not result.segment_folds:
        return []
    labels = ["segment", "segment_value"]
    slices = result.segments

    def per_value(name: str, value_of: Callable[[SegmentSlice], float | None]) -> GaugeMetricFamily:
        return _labelled_gauge(name, labels, (([s.segment, s.value], v) for s in slices
                                              if (v := value_of(s)) is not None))

    families = [
        per_value("model_segment_window_predictions", lambda s: s.window_predictions),
        per_value("model_segment_labeled_predictions", lambda s: s.labeled_predictions),
        per_value("model_segment_label_coverage_ratio", lambda s: s.label_coverage),
        per_value("model_segment_accuracy_ratio", lambda s: s.metrics.accuracy if s.metrics else None),
        per_value("model_segment_macro_f1_ratio", lambda s: s.metrics.macro.f1 if s.metrics else None),
        per_value("model_segment_mean_absolute_error", lambda s: s.regression.mae if s.regression else None),
        per_value("model_segment_root_mean_squared_error", lambda s: s.regression.rmse if s.regression else None),
        _labelled_gauge("model_segment_folded_values", ["segment"],
                        (([f.segment], f.folded_values) for f in result.segment_folds)),
    ]
    return [f for f in families if f.samples]


VERSION_EXTENSIONS.append(segment_families)


# ---- label delay (issue 12) --------------------------------------------------------------------
def label_delay_families_of(delay: LabelDelay) -> list[Metric]:
    """The label-delay histogram, the shares within k x label_delay and the configured delay."""
    families: list[Metric | None] = [
        histogram_family("model_label_delay_seconds", delay.histogram),
        _labelled_gauge("model_labeled_within_label_delay_ratio", ["multiple"],
                        (([str(k)], share) for k, _, _ in delay.within if (share := delay.share(k)) is not None)),
        _gauge("evaljobs_label_delay_seconds", delay.configured_seconds),
    ]
    return [f for f in families if f is not None and f.samples]


def label_delay_families(result: VersionResult) -> list[Metric]:
    """A version's label-delay families (nothing when none was measured)."""
    return label_delay_families_of(result.label_delay) if result.label_delay is not None else []


VERSION_EXTENSIONS.append(label_delay_families)

def health_families(job: JobResult, success_timestamp: float) -> list[Metric]:
    """Job-health gauges pushed into every group of the job, so staleness is alertable per group."""
    return [
        f for f in (
            _gauge("evaljobs_last_success_timestamp_seconds", success_timestamp),
            _gauge("evaljobs_run_duration_seconds", job.duration_seconds),
            _gauge("evaljobs_window_start_timestamp_seconds", job.window.start.timestamp()),
            _gauge("evaljobs_window_end_timestamp_seconds", job.window.end.timestamp()),
            _gauge("evaljobs_schedule_interval_seconds", job.schedule_interval_seconds),
        ) if f is not None
    ]


def job_families(job: JobResult) -> list[Metric]:
    """Job-level facts, pushed in the ``{job, model}`` group (no version)."""
    return [
        f for f in (
            _gauge("evaljobs_orphan_labels", job.orphan_labels),
            _gauge("evaljobs_evaluated_versions", len(job.versions)),
            _gauge("evaljobs_null_labels", job.null_labels),
            _gauge("evaljobs_conflicting_predictions", job.conflicting_predictions),
        ) if f is not None
    ]


def groups(job: JobResult, success_timestamp: float) -> list[tuple[dict[str, str], list[Metric]]]:
    """Every Pushgateway group of a job run: ``(grouping key without job, families)``.

    One group per version (its quality metrics and the job health), and one ``{model}``
    group with job-level facts and health, which exists even when the window was empty.
    """
    health = health_families(job, success_timestamp)
    out = [({"model": job.model}, job_families(job) + health)]
    for version in job.versions:
        out.append((version.grouping_key, version_families(version) + health))
    return out


class StaticCollector(Collector):
    """A collector that yields a fixed list of families (one per push, in a fresh registry)."""

    def __init__(self, families: Iterable[Metric]):
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return list(self._families)


def registry_of(families: Iterable[Metric]) -> CollectorRegistry:
    """A fresh registry holding exactly ``families``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StaticCollector(families))
    return registry


def relabelled(families: Iterable[Metric], labels: Mapping[str, str],
               timestamp: float | None = None) -> list[Metric]:
    """Copies of ``families`` with ``labels`` added to every sample (and a timestamp, if given)."""
    out = []
    for family in families:
        copy = Metric(family.name, family.documentation, family.type, family.unit)
        for sample in family.samples:
            copy.samples.append(sample._replace(
                labels={**labels, **sample.labels},
                timestamp=timestamp if timestamp is not None else sample.timestamp,
            ))
        out.append(copy)
    return out


def merged(families: Iterable[Metric]) -> list[Metric]:
    """Families of the same name merged into one (an exposition may name a family only once)."""
    by_name: dict[str, Metric] = {}
    for family in families:
        if family.name not in by_name:
            by_name[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
        by_name[family.name].samples.extend(family.samples)
    return list(by_name.values())
