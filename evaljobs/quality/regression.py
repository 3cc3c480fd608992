"""Regression (``task: regression``): a window's sums -> one record per version.

The database returns, per version, the count of labelled predictions and a few sums of the
signed error ``e = prediction - label`` (``sql/regression_aggregates.sql``, one statement per
window); the metrics are pure functions of those sums (:func:`regression_metrics`) and equal
scikit-learn's on the same rows:

- MAE ``sum|e| / n`` (``mean_absolute_error``), MSE ``sum e^2 / n`` and RMSE its root
  (``mean_squared_error``, ``root_mean_squared_error``);
- MAPE ``sum(|e| / max(|y|, eps)) / n'`` over the ``n'`` labels that are not 0
  (``mean_absolute_percentage_error`` on those rows; the zero labels are counted instead);
- R² ``1 - sum e^2 / (n * var(y))`` (``r2_score``, with its convention for constant labels);
- mean error ``sum e / n`` (the bias: positive means over-prediction).

The signed error is also counted into a Prometheus histogram with the job's ``error_buckets``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from evaljobs.db.source import JobSource
from evaljobs.errors import SourceError
from evaljobs.quality.latency import bucket_columns
from evaljobs.quality.metrics import LOG_LOSS_EPS, label_coverage
from evaljobs.records import Histogram, Problem, TaskResult, VersionResult
from evaljobs.windows import Window

#: scikit-learn's MAPE divides by ``max(|y|, eps)`` with float64's machine epsilon.
MAPE_EPS = LOG_LOSS_EPS


@dataclass(frozen=True)
class RegressionSums:
    """What the database sums over one version's (or segment's) labelled predictions."""

    labeled: int
    sum_error: float
    sum_absolute_error: float
    sum_squared_error: float
    label_variance: float | None
    zero_labels: int
    sum_absolute_percentage_error: float


@dataclass(frozen=True)
class RegressionMetrics:
    """Every regression metric of one set of labelled predictions (``None``: undefined)."""

    labeled: int
    mae: float
    mse: float
    rmse: float
    mape: float | None
    zero_labels: int
    r2: float | None
    mean_error: float

    def to_dict(self) -> dict[str, Any]:
        return {"labeled": self.labeled, "mae": self.mae, "mse": self.mse, "rmse": self.rmse, "mape": self.mape,
                "zero_labels": self.zero_labels, "r2": self.r2, "mean_error": self.mean_error}


def regression_metrics(sums: RegressionSums) -> RegressionMetrics | None:
    """MAE, MSE, RMSE, MAPE, R² and mean error from the sums; ``None`` without labelled predictions.

    MAPE is ``None`` when every label is 0. R² is ``None`` with fewer than two labels (where
    scikit-learn warns and returns NaN); with constant labels it is 1.0 for a perfect fit and
    0.0 otherwise, scikit-learn's ``force_finite`` convention.
    """
    n = sums.labeled
    if n == 0:
        return None
    mse = sums.sum_squared_error / n
    nonzero = n - sums.zero_labels
    r2 = None
    if n >= 2:
        total = n * (sums.label_variance or 0.0)
        if total > 0:
            r2 = 1 - sums.sum_squared_error / total
        else:
            r2 = 1.0 if sums.sum_squared_error == 0 else 0.0
    return RegressionMetrics(
        labeled=n,
        mae=sums.sum_absolute_error / n,
        mse=mse,
        rmse=math.sqrt(mse),
        mape=sums.sum_absolute_percentage_error / nonzero if nonzero else None,
        zero_labels=sums.zero_labels,
        r2=r2,
        mean_error=sums.sum_error / n,
    )


def sums_of(row: Any) -> RegressionSums:
    """The :class:`RegressionSums` of a result row with the columns of ``sql/regression_aggregates.sql``."""
    return RegressionSums(
        labeled=int(row.labeled or 0),
        sum_error=float(row.sum_error or 0.0),
        sum_absolute_error=float(row.sum_absolute_error or 0.0),
        sum_squared_error=float(row.sum_squared_error or 0.0),
        label_variance=None if row.label_variance is None else float(row.label_variance),
        zero_labels=int(row.zero_labels or 0),
        sum_absolute_percentage_error=float(row.sum_absolute_percentage_error or 0.0),
    )


def value_expressions(source: JobSource) -> dict[str, str]:
    """The ``{prediction_expr}`` and ``{label_expr}`` slots of ``sql/fragments/task_rows.sql``:
    the prediction (``columns.predicted_value``, else ``predicted_label``) and the label as numbers."""
    columns = source.job.columns
    predicted = columns.predicted_value or columns.predicted_label
    return {
        "prediction_expr": f"CAST(p.{source.quote(predicted)} AS {source.spec.float_type})",
        "label_expr": f"CAST(l.{source.quote(columns.label)} AS {source.spec.float_type})",
    }


def refuse_non_numbers(source: JobSource, window: Window) -> None:
    """Refuse a window whose predicted values or latest labels hold text that is not a number,
    on engines whose CAST would read it as 0 (SQLite): the other engines' casts fail the query
    with their own one line, so every engine refuses, and none computes a silent wrong number."""
    if not source.spec.text_in_numeric_columns:
        return
    columns = source.job.columns
    predicted = columns.predicted_value or columns.predicted_label
    raw = {"prediction_expr": f"p.{source.quote(predicted)}", "label_expr": f"l.{source.quote(columns.label)}",
           "segment_columns": "", "prediction_number": source.spec.number_sql("prediction"),
           "label_number": source.spec.number_sql("label")}
    [row] = source.query("regression_non_numbers", source.window_params(window), raw)
    found = [(int(count), example, column, what) for count, example, column, what in (
        (row.prediction_count, row.prediction_example, predicted, "predicted value"),
        (row.label_count, row.label_example, columns.label, "label")) if count]
    if found:
        said = " and ".join(f"{count} {what}(s) in {column!r} (e.g. {example!r})" for count, example, column, what in found)
        raise SourceError(
            f"job {source.job.name!r}: {said} of the window are not numbers, which {source.dialect} would read as 0",
            "store numbers (a label that has not arrived is no row, or NULL), or map a view that leaves those rows out")


def evaluate_regression(source: JobSource, window: Window) -> TaskResult:
    """Every version of a regression job that has predictions in ``window`` (one statement)."""
    job = source.job
    refuse_non_numbers(source, window)
    bounds = tuple(job.error_buckets)
    params = source.window_params(window) | {
        "eps": MAPE_EPS,
        "arrived_from": source.bind_time(window.labels_as_of - window.length),
    } | {f"le_{i}": bound for i, bound in enumerate(bounds)}
    slots = value_expressions(source) | {"segment_columns": "", "bucket_counts": bucket_columns(len(bounds), "error")}
    rows = source.query("regression_aggregates", params, slots)
    orphans = int(rows[0].orphan_labels or 0) if rows else 0
    versions: list[VersionResult] = []
    problems: list[Problem] = []
    for row in sorted((r for r in rows if r.predictions is not None), key=lambda r: r.model_version or ""):
        _require_keys(source, row)
        where = f"job {job.name!r} version {row.model_version!r}"
        low, high = row.min_error, row.max_error
        metrics, errors = None, None
        if low is not None and not (math.isfinite(low) and math.isfinite(high)):
            # PostgreSQL and DuckDB store NaN and infinities; they surface in MIN or MAX.
            problems.append(Problem(where, "predictions or labels include NaN or infinite values: the regression "
                                           "metrics were not computed; fix the rows"))
        else:
            sums = sums_of(row)
            metrics = regression_metrics(sums)
            mapping = row._mapping
            errors = Histogram(bounds, tuple(int(mapping[f"le_{i}"]) for i in range(len(bounds))),
                               sums.labeled, sums.sum_error)
        window_predictions, labeled = int(row.predictions), int(row.labeled or 0)
        versions.append(VersionResult(
            job=job.name,
            model=job.model,
            model_version=row.model_version,
            task=job.task,
            window=window,
            window_predictions=window_predictions,
            labeled_predictions=labeled,
            predictions_total=max(int(row.predictions_total or 0), window_predictions),
            confusion={},
            metrics=None,
            label_coverage=label_coverage(labeled, window_predictions),
            regression=metrics,
            error_histogram=errors,
        ))
    return TaskResult(versions, orphans, problems)


def _require_keys(source: JobSource, row: Any) -> None:
    """Refuse a window where a prediction has no version or no predicted value (see classification)."""
    job = source.job
    columns = job.columns
    if row.model_version is None or row.model_version == "":
        raise SourceError(
            f"job {job.name!r}: {int(row.predictions)} prediction(s) in the window have an empty or NULL "
            f"{columns.model_version!r} (model_version)",
            "fill the column, or filter those rows out with a view and point tables.predictions at it")
    if row.missing_predictions:
        column = columns.predicted_value or columns.predicted_label
        raise SourceError(
            f"job {job.name!r}: {int(row.missing_predictions)} prediction(s) of version {row.model_version!r} "
            f"have a NULL {column!r} (the predicted value)",
            "fill the column, or filter those rows out with a view and point tables.predictions at it")
