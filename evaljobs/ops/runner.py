"""Evaluate jobs: one window of one job -> its records (:func:`evaluate_job`), and a
:class:`Runner` that plans windows and keeps engines and checked sources between runs.

A :class:`Runner` keeps one engine per database URL and one checked source per job, so a
long-lived scheduler does not reconnect or re-inspect tables for every window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from evaljobs.config import Config, Job
from evaljobs.db.engine import connect
from evaljobs.db.source import IgnoredRows, JobSource
from evaljobs.drift.evaluate import evaluate_drift
from evaljobs.quality.classification import class_fold_warnings
from evaljobs.quality.estimation import evaluate_estimate
from evaljobs.quality.latency import latency_histograms
from evaljobs.quality.label_delay import label_delays
from evaljobs.quality.regression import value_expressions
from evaljobs.quality.segments import evaluate_segments
from evaljobs.quality.tasks import TASKS
from evaljobs.ops import incremental
from evaljobs.records import JobResult, Problem, VersionResult
from evaljobs.windows import Window, plan_window, schedule_interval

if TYPE_CHECKING:
    from evaljobs.ops.store import ResultsStore


def evaluate_job(
    source: JobSource,
    window: Window,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    summaries: "ResultsStore | None" = None,
) -> JobResult:
    """Evaluate every version of the job's model that has predictions in ``window``.

    This is the one code path that ``run``, ``schedule``, ``backfill`` and ``gate`` share:
    the job's task gives the versions' quality records, then latency and drift are added.
    With ``summaries`` (a results store; not for dry runs), a classification job's core
    metrics and latency come from stored parts of the window (:mod:`evaljobs.ops.incremental`),
    with the same numbers as the full evaluation.
    """
    job = source.job
    started_at, started = wall_clock(), clock()
    source.ensure_schema()
    source.check_window_timestamps(window)
    parts = None
    if summaries is not None and incremental.applies(source):
        parts = incremental.evaluate_incremental(source, window, summaries, now=started_at)
    quality = parts.quality if parts else TASKS[job.task].evaluate(source, window)
    versions, problems = quality.versions, list(quality.problems)
    for key, (count, example) in source.non_numeric_values(window).items():
        column = getattr(job.columns, key)
        problems.append(Problem(f"job {job.name!r}", (
            f"column {column!r} holds {count} {key} value(s) that are not numbers (e.g. {example!r}) in the "
            f"window; they were left out as if missing")))
    if "latency_seconds" in source.available_optional and versions:
        if parts:
            latency, latency_problems = parts.latency, parts.latency_problems
        elif quality.latency is not None:  # counted by the task's own statement
            latency, latency_problems = quality.latency, quality.latency_problems
        else:
            latency, latency_problems = latency_histograms(source, window)
        versions = [replace(v, latency=latency.get(v.model_version)) for v in versions]
        problems.extend(latency_problems)
    if versions:
        if parts and parts.delays is not None:
            delays, delay_problems = parts.delays, parts.delay_problems
        elif quality.label_delays is not None:  # counted by the task's own statement
            delays, delay_problems = quality.label_delays, quality.label_delay_problems
        else:
            delays, delay_problems = label_delays(source, window)
        versions = [replace(v, label_delay=delays.get(v.model_version)) for v in versions]
        problems.extend(delay_problems)
    if job.segments and versions:
        segments, folds = evaluate_segments(source, window)
        versions = [replace(v, segments=segments.get(v.model_version, ()), segment_folds=folds) for v in versions]
    if job.drift is not None:
        drift_reports, drift_problems = evaluate_drift(
            source, window, [v.model_version for v in versions],
            categorical_parts=parts.drift.categorical if parts and parts.drift else None,
            numeric_reference=parts.drift.numeric_reference if parts and parts.drift else None)
        versions = [replace(v, drift=drift_reports.get(v.model_version)) for v in versions]
        problems.extend(drift_problems)
    if job.estimate is not None:
        versions, estimate_problems = _with_estimates(source, window, versions)
        problems.extend(estimate_problems)
    ignored = source.ignored_rows(window, compared_prediction(source))
    # On the full and the incremental path alike (both build versions with version_result).
    warnings = class_fold_warnings(job, versions) + ignored_row_warnings(job, ignored)
    return JobResult(
        job=job.name,
        model=job.model,
        task=job.task,
        window=window,
        versions=versions,
        orphan_labels=quality.orphan_labels,
        started_at=started_at,
        duration_seconds=clock() - started,
        problems=problems,
        schedule_interval_seconds=schedule_interval(job.schedule, window.evaluated_at).total_seconds(),
        null_labels=ignored.null_labels,
        conflicting_predictions=sum(count for count, _ in ignored.conflicts.values()),
        warnings=warnings,
    )


def compared_prediction(source: JobSource) -> str:
    """The prediction as the job's task compares it: class text, or the regression value."""
    if source.job.task == "regression":
        return value_expressions(source)["prediction_expr"]
    return source.identifiers()["predicted_label_text"]


def ignored_row_warnings(job: Job, ignored: IgnoredRows) -> list[Problem]:
    """One warning line per kind of row the window could not use as it stands (risk 8)."""
    warnings = []
    if ignored.null_labels:
        warnings.append(Problem(f"job {job.name!r}", (
            f"{ignored.null_labels} row(s) of {job.tables.labels!r} that arrived in the last window length have a "
            f"NULL {job.columns.label!r}; a prediction whose latest label row is one counts as not labelled "
            f"yet: fill or delete those rows")))
    if ignored.conflicts:
        each = ", ".join(f"version {version!r}: {count} (e.g. prediction_id {example!r})"
                         for version, (count, example) in sorted(ignored.conflicts.items()))
        warnings.append(Problem(f"job {job.name!r}", (
            f"prediction ids with several rows in the window that predict different values ({each}); "
            f"one (prediction_id, model_version) is one prediction and which row counts is not defined: "
            f"deduplicate {job.tables.predictions!r}")))
    return warnings


def _with_estimates(source: JobSource, window: Window,
                    versions: list[VersionResult]) -> tuple[list[VersionResult], list]:
    """Add the recent window's estimate to each version; a version seen only in the recent
    window (a canary deployed since the labelled window) gets a record of its own."""
    job = source.job
    reports, problems = evaluate_estimate(source, window, [v.model_version for v in versions])
    out = [replace(v, estimate=reports.get(v.model_version)) for v in versions]
    known = {v.model_version for v in versions}
    for version in sorted(set(reports) - known):
        out.append(VersionResult(
            job=job.name, model=job.model, model_version=version, task=job.task, window=window,
            window_predictions=0, labeled_predictions=0, predictions_total=0, confusion={}, metrics=None,
            label_coverage=None, positive_label=job.positive_label, estimate=reports[version]))
    return out, problems


@dataclass
class Runner:
    """Evaluates the jobs of one config against its database."""

    config: Config
    _engine: Engine | None = field(default=None, repr=False)
    _sources: dict[str, JobSource] = field(default_factory=dict, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = connect(self.config.database, waits=self.config.waits())
        return self._engine

    def source(self, job: Job) -> JobSource:
        """The job's source, its tables and columns checked on first use."""
        if job.name not in self._sources:
            source = JobSource(self.engine, job)
            source.check_schema()
            self._sources[job.name] = source
        return self._sources[job.name]

    def window(self, job: Job, at: datetime, labels_as_of: datetime | None = None) -> Window:
        """The window an evaluation of ``job`` at ``at`` covers."""
        return plan_window(at, job.window, job.label_delay, labels_as_of)

    def evaluate(self, job: Job, at: datetime, labels_as_of: datetime | None = None) -> JobResult:
        """Evaluate ``job`` at ``at`` (labels as of ``labels_as_of``, default ``at``)."""
        return evaluate_job(self.source(job), self.window(job, at, labels_as_of))

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self._sources.clear()

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
