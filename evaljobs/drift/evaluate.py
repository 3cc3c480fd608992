"""Drift of one job over one window: plan the compared values, query summaries, apply the methods.

Called by :func:`evaljobs.ops.runner.evaluate_job` for jobs with a ``drift:`` section. A value
that cannot be compared (a missing column, text in a numeric column, NaN or infinities in a
numeric value, a reference without rows or with a single value) becomes a :class:`~evaljobs.records.Problem` naming the job and
the feature; every other value is still evaluated and reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence


from evaljobs.config import Drift, Job
from evaljobs.drift.queries import (
    CategoricalSummaries,
    DriftInputError,
    DriftSource,
    DriftValue,
    NumericReference,
    NumericSummaries,
    NumericVersion,
    ReferenceRows,
    StoredReference,
)
from evaljobs.records import (
    DriftBucket,
    DriftReport,
    DriftStatistic,
    FeatureDrift,
    Problem,
    ReferenceSummary,
)
from evaljobs.db.source import JobSource
from evaljobs.windows import Window

log = logging.getLogger("evaljobs.drift")


def reference_rows(job: Job, window: Window) -> tuple[ReferenceRows, str]:
    """Where the job's drift reference is for ``window``, and a description for people."""
    reference = job.drift.reference  # type: ignore[union-attr]
    of_version = f" of version {reference.version}" if reference.version else ""
    if reference.kind == "baseline":
        rows = ReferenceRows("predictions", reference.start, reference.end, reference.version)
        return rows, f"predictions {_span(reference.start, reference.end)}{of_version}"
    if reference.kind == "previous_window":
        rows = ReferenceRows("predictions", window.start - window.length, window.start, reference.version)
        return rows, f"previous window {_span(rows.start, rows.end)}{of_version}"
    if reference.kind == "version":
        return (ReferenceRows("predictions", window.start, window.end, reference.version,
                              excluded_version=reference.version),
                f"version {reference.version} over the same window")
    return ReferenceRows("table", table=reference.table), f"table {reference.table}"


def _span(start, end) -> str:  # type: ignore[no-untyped-def]
    return f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC"


def plan_values(
    job: Job,
    predictions: dict[str, tuple[str, bool | None]],
    reference_table: dict[str, tuple[str, bool | None]] | None,
    has_score: bool,
) -> tuple[list[DriftValue], list[tuple[str, str]]]:
    """The values to compare (features, then model outputs) and ``(feature, problem)`` for the rest.

    A feature's kind is the configured one, else numeric for a numeric column type and
    categorical otherwise. With a table reference, each value's column must exist there too.
    """
    drift: Drift = job.drift  # type: ignore[assignment]
    table = drift.reference.table
    values: list[DriftValue] = []
    problems: list[tuple[str, str]] = []

    def in_reference(name: str, column: str, setting: str) -> str | None:
        if reference_table is None:
            return column
        found = reference_table.get(column.lower())
        if found is None:
            problems.append((name, f"column {column!r} not found in the reference table {table!r}; "
                                   f"add it there or {setting}"))
            return None
        return found[0]

    for feature in drift.features:
        found = predictions.get(feature.name.lower())
        if found is None:
            problems.append((feature.name, (
                f"column {feature.name!r} not found in {job.tables.predictions!r} "
                f"(has: {', '.join(sorted(predictions))}); fix the name in drift.features or add the column")))
            continue
        column, numeric = found
        kind = feature.kind or ("numeric" if numeric else "categorical")
        reference_column = in_reference(feature.name, column, "remove it from drift.features")
        if reference_column is not None:
            values.append(DriftValue(feature.name, kind, column, reference_column))

    # A regression model's prediction and label are numbers, compared as numeric values.
    numeric_outputs = job.task == "regression"
    outputs = [("predicted_label", "numeric", job.columns.predicted_value or job.columns.predicted_label)
               if numeric_outputs else ("predicted_label", "categorical", job.columns.predicted_label)]
    if has_score and job.columns.score is not None:
        outputs.append(("score", "numeric", job.columns.score))
    for name, kind, column in outputs:
        if getattr(drift, name):
            actual = predictions.get(column.lower(), (column, None))[0]
            reference_column = in_reference(name, column, f"set drift.{name}: false")
            if reference_column is not None:
                values.append(DriftValue(name, kind, actual, reference_column))
    if drift.label:
        reference_column = in_reference("label", job.columns.label, "set drift.label: false")
        if reference_column is not None:
            values.append(DriftValue("label", "numeric" if numeric_outputs else "categorical", None, reference_column))
    return values, problems


def evaluate_drift(
    source: JobSource, window: Window, versions: Sequence[str],
    categorical_parts: Callable[[DriftValue, ReferenceRows, int, int], CategoricalSummaries | None] | None = None,
    numeric_reference: Callable[[DriftValue, ReferenceRows], StoredReference | None] | None = None,
) -> tuple[dict[str, DriftReport], list[Problem]]:
    """Drift of every version in ``versions`` (except a reference version) against the job's reference.

    ``categorical_parts`` (incremental windows, :mod:`evaljobs.ops.incremental`) gives a
    categorical value's summaries from stored parts, or None to query them as usual;
    ``numeric_reference`` a numeric value's stored reference bins (or None).
    """
    job = source.job
    drift = job.drift
    if drift is None or not versions:
        return {}, []
    drift_source = DriftSource(source)
    reference, description = reference_rows(job, window)
    compared = [v for v in versions if not (drift.reference.kind == "version" and v == drift.reference.version)]
    problems: list[Problem] = []
    if not compared:
        return {}, []

    predictions = drift_source.columns(job.tables.predictions) or {}
    reference_table = None
    if reference.source == "table":
        reference_table = drift_source.columns(reference.table or "")
        if reference_table is None:
            return {}, [Problem(f"job {job.name!r} drift", (
                f"reference table or view {reference.table!r} not found in the database: no drift computed; "
                "create it or fix drift.reference.table"))]
    # The score is the positive class's probability, so score drift is for binary jobs (as the score metrics).
    has_score = job.task == "binary" and "score" in source.available_optional
    values, planning_problems = plan_values(job, predictions, reference_table, has_score)
    problems += [Problem(_where(job, name), message) for name, message in planning_problems]

    features: dict[str, list[FeatureDrift]] = {version: [] for version in compared}
    reference_count: int | None = None
    for value in values:
        where = _where(job, value.name)
        started = time.monotonic()
        try:
            if value.kind == "numeric":
                stored = numeric_reference(value, reference) if numeric_reference else None
                summary: NumericSummaries | CategoricalSummaries = _numeric_summaries(
                    drift_source, value, window, reference, drift, stored)
                rows_in_reference = summary.reference.rows
            else:
                summary = ((categorical_parts(value, reference, drift.max_categories, len(versions))
                            if categorical_parts else None)
                           or drift_source.categorical(value, window, reference, drift.max_categories, len(versions)))
                rows_in_reference = summary.reference_rows
        except DriftInputError as exc:
            problems.append(Problem(where, str(exc)))
            continue
        finally:
            log.debug("job %s: %s drift summaries of %r took %.3fs",
                      job.name, value.kind, value.name, time.monotonic() - started)
        if not value.is_label:
            if reference_count is None:
                reference_count = rows_in_reference
            if rows_in_reference == 0:
                problems.append(Problem(f"job {job.name!r} drift", (
                    f"the reference ({description}) has no rows: no drift computed for any feature; "
                    "choose a reference with data in drift.reference")))
                break
        problem = _reference_problem(value, summary, description, drift)
        if problem:
            problems.append(Problem(where, problem))
            continue
        for version in compared:
            result, version_problem = (
                _numeric_feature(value, drift, summary.reference, summary.versions.get(version))
                if isinstance(summary, NumericSummaries)
                else _categorical_feature(value, drift, summary, version)
            )
            features[version].append(result)
            if version_problem:
                problems.append(Problem(f"job {job.name!r} version {version!r} feature {value.name!r}", version_problem))

    summary_of_reference = ReferenceSummary(drift.reference.kind, description, reference_count)
    reports = {version: DriftReport(summary_of_reference, tuple(features[version])) for version in compared}
    return reports, problems


def _where(job: Job, feature: str) -> str:
    return f"job {job.name!r} feature {feature!r}"


def _numeric_summaries(drift_source: DriftSource, value: DriftValue, window: Window,
                       reference: ReferenceRows, drift: Drift, stored: StoredReference | None = None) -> NumericSummaries:
    if value.column is not None:
        bad, example = drift_source.non_numeric(value, window, reference,
                                                window_only=stored is not None and stored.bins is not None)
        if bad:
            raise DriftInputError(
                f"numeric feature has {bad} value(s) that are not numbers (e.g. {example!r}); "
                "clean the column, or declare kind: categorical in drift.features")
    try:
        return drift_source.numeric(value, window, reference, drift.bins, drift.exact_max_values,
                                    drift.binned_max_error, stored)
    except DriftInputError as exc:
        raise DriftInputError(f"values could not be read as numbers ({exc}); "
                              "clean the column, or declare kind: categorical in drift.features") from None


def _reference_problem(value: DriftValue, summary: NumericSummaries | CategoricalSummaries,
                       description: str, drift: Drift) -> str | None:
    """Why the reference cannot serve this value (no values, one value, too many categories)."""
    if isinstance(summary, NumericSummaries):
        if summary.reference.non_finite:
            return (f"the reference ({description}) has {summary.reference.non_finite} "
                    f"{_non_finite(summary.reference.non_finite)}: drift not computed; {NON_FINITE_FIX}")
        values, nulls, distinct = summary.reference.values, summary.reference.nulls, summary.reference.distinct
        single = f"{summary.reference.minimum:g}" if summary.reference.minimum is not None else ""
    else:
        values, nulls, distinct = sum(summary.reference.values()), summary.reference_nulls, len(summary.reference)
        single = next(iter(summary.reference), "")
        if summary.truncated or summary.distinct_values > drift.max_categories:
            return (f"{summary.distinct_values} distinct values, more than drift.max_categories "
                    f"({drift.max_categories}), too many to compare as categories; declare kind: numeric "
                    "if it is a number, or raise drift.max_categories")
    if values == 0 and value.is_label:
        return (f"the reference ({description}) has no labelled predictions: label drift not computed "
                "(labels may not have arrived for it yet); choose another reference or set drift.label: false")
    if values == 0:
        return (f"the reference ({description}) has only NULL values ({nulls} rows): drift not computed; "
                "fill the column or choose another reference in drift.reference")
    if distinct == 1:
        return (f"a single value ({single!s}) in all {values} reference values: its drift cannot be measured; "
                "drop it from drift.features or choose another reference")
    return None


NON_FINITE_FIX = "clean the column (or make them NULL)"


def _non_finite(count: int) -> str:
    # NaN and infinities have no place among the sorted values every numeric statistic rests on.
    return "NaN or infinite value" if count == 1 else "NaN or infinite values"


def _decision(name: str, kind: str, drift: Drift, reference_values: int) -> tuple[str, float]:
    from evaljobs.drift import methods  # numpy and scipy.special load only for jobs with drift
    feature = next((f for f in drift.features if f.name == name), None)
    method = feature.method if feature is not None and feature.method != "auto" else methods.default_method(kind, reference_values)
    threshold = feature.threshold if feature is not None and feature.threshold is not None else None
    if threshold is None:
        threshold = drift.thresholds.get(method, methods.DEFAULT_THRESHOLDS[method])  # type: ignore[call-overload]
    return method, threshold


def _decided(method: str, threshold: float, statistics: tuple[DriftStatistic, ...]) -> bool:
    from evaljobs.drift import methods  # numpy and scipy.special load only for jobs with drift
    chosen = next(s for s in statistics if s.method == method)
    return methods.detected(method, chosen.score, chosen.p_value, threshold)


def _numeric_feature(value: DriftValue, drift: Drift, reference: NumericReference,
                     version: NumericVersion | None) -> tuple[FeatureDrift, str | None]:
    from evaljobs.drift import methods  # numpy and scipy.special load only for jobs with drift
    method, threshold = _decision(value.name, "numeric", drift, reference.values)
    current_values = version.current_values if version else 0
    current_nulls = version.current_nulls if version else 0
    if version is None or current_values == 0:
        empty = FeatureDrift(value.name, "numeric", method, threshold, None, (), reference.values, 0, current_nulls)
        return empty, "every value in the window is NULL: drift not computed"
    if version.current_non_finite:
        unmeasured = FeatureDrift(value.name, "numeric", method, threshold, None, (), reference.values,
                                  current_values, current_nulls)
        return unmeasured, (f"{version.current_non_finite} {_non_finite(version.current_non_finite)} in the window: "
                            f"drift not computed; {NON_FINITE_FIX}")
    n, m = reference.values, current_values
    reference_counts = [b.reference_count for b in version.bins]
    current_counts = [b.current_count for b in version.bins]
    comparison = methods.Comparison(reference_counts, current_counts, n, m, max_gap=version.max_gap,
                                    area=version.area, reference_sum_squares=reference.sum_squares)
    statistics = tuple(DriftStatistic(*s) for s in methods.statistics("numeric", comparison))
    buckets = []
    lower = "-inf"
    for bin_ in version.bins:
        upper = "+inf)" if bin_.upper_edge is None else f"{bin_.upper_edge:.6g}]"
        buckets.append(DriftBucket(f"({lower}, {upper}", bin_.reference_count, bin_.current_count))
        lower = f"{bin_.upper_edge:.6g}" if bin_.upper_edge is not None else lower
    bounds = None
    if version.mode == "binned":
        # The largest possible difference from the exact statistic (evaljobs.drift.binned).
        norm = methods.wasserstein_norm(reference.sum_squares or 0.0, n)
        bounds = {"ks": version.ks_error, "wasserstein": methods.wasserstein(version.area_error, n, m) / norm}
    return FeatureDrift(
        value.name, "numeric", method, threshold, _decided(method, threshold, statistics), statistics,
        n, m, current_nulls, tuple(buckets), mode=version.mode, error_bounds=bounds,
    ), None


def _categorical_feature(value: DriftValue, drift: Drift, summary: CategoricalSummaries,
                         version: str) -> tuple[FeatureDrift, str | None]:
    from evaljobs.drift import methods  # numpy and scipy.special load only for jobs with drift
    reference = summary.reference
    n = sum(reference.values())
    method, threshold = _decision(value.name, "categorical", drift, n)
    current = summary.versions.get(version, {})
    # Label drift is over labelled predictions only, so the label has no NULL ratio.
    nulls = None if value.is_label else summary.version_nulls.get(version, 0)
    m = sum(current.values())
    if m == 0:
        empty = FeatureDrift(value.name, "categorical", method, threshold, None, (), n, 0, nulls)
        # No label yet is normal (labels arrive late); a window of NULL features is not.
        return empty, None if value.is_label else "every value in the window is NULL: drift not computed"
    names, reference_buckets, current_buckets = methods.category_buckets(reference, current)
    _, reference_table, current_table = methods.category_table(reference, current)
    comparison = methods.Comparison(reference_buckets, current_buckets, n, m, table=(reference_table, current_table))
    statistics = tuple(DriftStatistic(*s) for s in methods.statistics("categorical", comparison))
    buckets = tuple(DriftBucket(name, r, c) for name, r, c in zip(names, reference_buckets, current_buckets))
    return FeatureDrift(
        value.name, "categorical", method, threshold, _decided(method, threshold, statistics), statistics,
        n, m, nulls, buckets,
    ), None


__all__ = ["evaluate_drift", "plan_values", "reference_rows"]
