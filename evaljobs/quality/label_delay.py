"""Label delay: how late labels really arrive, per version, so that ``label_delay`` can be chosen.

``label_delay`` silently shapes every number evaljobs reports: too short, and coverage is low
and biased toward the predictions whose labels come fast; too long, and alerts come late. Each
run therefore measures, over a **look-back population** -- the job's predictions made in
``[window end - lookback, window end)`` with ``lookback = max(4 x window, 4 x label_delay)``
-- the delay from each prediction to the first of its labels that had arrived by the
evaluation time (classification: counted by ``sql/window_aggregates.sql`` over the join that
also gives the confusion cells, :func:`delays_from_counts`; regression: ``sql/label_delays.sql``,
one statement, :func:`label_delays`):

- ``model_label_delay_seconds``: the delays as a histogram (buckets from a minute to four weeks);
- ``model_labeled_within_label_delay_ratio{multiple="1"|"2"|"4"}``: of the predictions at least
  k x label_delay old, the share labelled within k x label_delay. ``multiple="4"`` approximates
  what eventually arrives, so ``1`` / ``4`` is the share of arriving labels the configured
  ``label_delay`` catches (the ``ModelLabelsLate`` alert fires below 0.9).

``evaljobs run --explain`` adds the suggestion (:func:`suggest_label_delays`): the smallest
delay that covers a target share (default 90%) of the population's labelled predictions, from
the exact quantile of the observed delays (``sql/label_delay_suggestion.sql``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from evaljobs.config import Job
from evaljobs.db import sqlfiles
from evaljobs.db.source import CellCounts, JobSource
from evaljobs.records import Histogram, LabelDelay, Problem
from evaljobs.windows import Window

#: Bucket bounds of model_label_delay_seconds: 1, 5, 15, 30 min, 1, 2, 4, 8, 12 h, 1, 2, 4 d, 1, 2, 4 weeks.
DELAY_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0,
                 86400.0, 172800.0, 345600.0, 604800.0, 1209600.0, 2419200.0)
#: The multiples of label_delay whose label share is published.
MULTIPLES = (1, 2, 4)
#: The look-back is this many windows (or this many label delays, if longer).
LOOKBACK = 4
#: The default share of arriving labels a suggested label_delay must catch.
DEFAULT_TARGET = 0.9


def lookback(window: Window, label_delay: timedelta) -> timedelta:
    """How far before the window's end the label-delay population starts."""
    return max(LOOKBACK * window.length, LOOKBACK * label_delay)


# sql/label_delays.sql counts the bounds over delays in whole minutes, rounded up: exact only
# for bounds that are whole minutes.
assert all(bound % 60 == 0 for bound in DELAY_BUCKETS), "label-delay bounds must be whole minutes"


def _minute_bucket_columns() -> str:
    """``{bucket_counts}`` of sql/label_delays.sql: per bound, the labelled predictions whose
    delay, in whole minutes rounded up, is at most the bound (the same as the delay itself is)."""
    return ",\n    ".join(f"SUM(CASE WHEN delay_minute * 60 <= :le_{i} THEN labeled ELSE 0 END) AS le_{i}"
                          for i in range(len(DELAY_BUCKETS)))


def _within_sums() -> str:
    return ",\n    ".join(f"SUM(due_{k}) AS due_{k},\n    SUM(within_{k}) AS within_{k}" for k in MULTIPLES)


def _within_columns() -> str:
    return ",\n    ".join(
        f"COUNT(CASE WHEN predicted_at < :due_{k} THEN 1 END) AS due_{k},\n    "
        f"COUNT(CASE WHEN predicted_at < :due_{k} AND delay_seconds <= :delay_{k} THEN 1 END) AS within_{k}"
        for k in MULTIPLES)


def _params(source: JobSource, window: Window) -> dict[str, Any]:
    job = source.job
    return source.window_params(window) | {
        "lookback_start": source.bind_time(window.end - lookback(window, job.label_delay)),
    }


def _delay_params(source: JobSource, window: Window) -> dict[str, Any]:
    """The look-back, the histogram bounds and, per multiple k, when a prediction is due and the
    delay that counts as within k x label_delay."""
    delay = source.job.label_delay
    params = _params(source, window) | {f"le_{i}": bound for i, bound in enumerate(DELAY_BUCKETS)}
    for k in MULTIPLES:
        params[f"due_{k}"] = source.bind_time(window.labels_as_of - k * delay)
        params[f"delay_{k}"] = (k * delay).total_seconds()
    return params


def delay_cell_counts(source: JobSource, window: Window) -> CellCounts:
    """The label-delay counts as sql/window_aggregates.sql adds them to each confusion cell, over
    the same join (classification): the delay is compared with each bound itself (the
    per-engine sql/fragments/delay_at_most.sql), not grouped by minute first."""
    def at_most(bound: str) -> str:
        return sqlfiles.render("fragments/delay_at_most", {"bound": bound}, dialect=source.dialect).strip()

    named = [("population", "COUNT(*)"), ("labeled", "COUNT(delay_seconds)"),
             ("delay_sum", "SUM(delay_seconds)"), ("min_delay", "MIN(delay_seconds)")]
    named += [(f"le_{i}", f"COUNT(CASE WHEN {at_most(f'le_{i}')} THEN 1 END)") for i in range(len(DELAY_BUCKETS))]
    for k in MULTIPLES:
        named += [(f"due_{k}", f"COUNT(CASE WHEN predicted_at < :due_{k} THEN 1 END)"),
                  (f"within_{k}", f"COUNT(CASE WHEN predicted_at < :due_{k} AND {at_most(f'delay_{k}')} THEN 1 END)")]
    return CellCounts(_delay_params(source, window), tuple(f"{sql} AS {name}" for name, sql in named),
                      tuple(name for name, _ in named))


def label_delays(source: JobSource, window: Window) -> tuple[dict[str, LabelDelay], list[Problem]]:
    """Per version, the delays of its labels over the look-back population (see the module
    docstring), from their own statement (tasks whose statement does not count them)."""
    slots = {"bucket_counts": _minute_bucket_columns(), "within_counts": _within_columns(),
             "within_sums": _within_sums()}
    return delays_from_counts(source.job, source.query("label_delays", _delay_params(source, window), slots))


def delays_from_counts(job: Job, rows: Iterable[Any], population: str = "predictions") -> tuple[
        dict[str, LabelDelay], list[Problem]]:
    """Per version, its label delays from rows of counts (sql/label_delays.sql's, one per
    version, or sql/window_aggregates.sql's cells, several per version, whose ``population``
    column counts the look-back's predictions): sums, the smallest delay, per-bound and
    per-multiple counts are added up."""
    totals: dict[str, list[Any]] = {}
    bounds = range(len(DELAY_BUCKETS))
    for row in rows:
        mapping = row if isinstance(row, Mapping) else row._mapping
        counts = [int(mapping[population]), int(mapping["labeled"] or 0),
                  *(int(mapping[f"le_{i}"] or 0) for i in bounds),
                  *(int(mapping[f"{kind}_{k}"] or 0) for k in MULTIPLES for kind in ("due", "within"))]
        delay_sum = None if mapping["delay_sum"] is None else float(mapping["delay_sum"])
        min_delay = None if mapping["min_delay"] is None else float(mapping["min_delay"])
        seen = totals.get(mapping["model_version"])
        if seen is None:
            totals[mapping["model_version"]] = [counts, delay_sum, min_delay]
            continue
        seen[0] = [a + b for a, b in zip(seen[0], counts)]
        if delay_sum is not None:
            seen[1] = delay_sum if seen[1] is None else seen[1] + delay_sum
        if min_delay is not None:
            seen[2] = min_delay if seen[2] is None else min(seen[2], min_delay)
    out: dict[str, LabelDelay] = {}
    problems: list[Problem] = []
    first_within = 2 + len(DELAY_BUCKETS)
    for version, (counts, delay_sum, min_delay) in totals.items():
        within = tuple((k, counts[first_within + 2 * i], counts[first_within + 2 * i + 1])
                       for i, k in enumerate(MULTIPLES))
        record, problem = delay_record(job.name, version, job.label_delay, counts[0], counts[1], delay_sum,
                                       min_delay, tuple(counts[2:first_within]), within)
        if problem:
            problems.append(problem)
        out[version] = record
    return out, problems


def delay_record(job: str, version: str, delay: timedelta, predictions: int, labeled: int, delay_sum: float | None,
                 min_delay: float | None, cumulative: tuple[int, ...],
                 within: tuple[tuple[int, int, int], ...]) -> tuple[LabelDelay, Problem | None]:
    """One version's record from its counts (a look-back's, or its incremental parts' summed),
    and a problem when labels arrived before their predictions."""
    problem = None
    if min_delay is not None and min_delay < 0:
        early = cumulative[0]  # not exact: the count at or below the first bound
        problem = Problem(
            f"job {job!r} version {version!r}",
            f"some labels arrived before their prediction (the earliest {-min_delay:.0f}s before; "
            f"{early} label(s) within the first delay bucket): check the clocks that write predicted_at "
            "and labeled_at; they count as delay 0 or less in model_label_delay_seconds")
    return LabelDelay(
        configured_seconds=delay.total_seconds(),
        predictions=predictions,
        histogram=Histogram(DELAY_BUCKETS, cumulative, labeled, float(delay_sum or 0.0)),
        within=within,
    ), problem


@dataclass(frozen=True)
class Suggestion:
    """A label_delay for one version that catches ``target`` of the labels that arrive."""

    model_version: str
    predictions: int
    labeled: int
    suggested_seconds: float | None
    within_suggested: int
    within_configured: int
    target: float

    @property
    def suggested(self) -> timedelta | None:
        """The suggestion rounded up to a whole minute (what a config would say)."""
        if self.suggested_seconds is None:
            return None
        return timedelta(minutes=max(1, math.ceil(self.suggested_seconds / 60 - 1e-9)))

    def share(self, count: int, of_labeled: bool) -> float | None:
        total = self.labeled if of_labeled else self.predictions
        return count / total if total else None


def suggest_label_delays(source: JobSource, window: Window, target: float = DEFAULT_TARGET) -> list[Suggestion]:
    """Per version, the smallest delay that catches ``target`` of the look-back population's
    labelled predictions (an exact quantile, computed in the database), with the coverage it
    and the configured label_delay give."""
    params = _params(source, window) | {
        "target_ppm": round(target * 1_000_000),
        "label_delay_seconds": source.job.label_delay.total_seconds(),
    }
    return [Suggestion(row.model_version, int(row.predictions), int(row.labeled),
                       None if row.suggested_seconds is None else float(row.suggested_seconds),
                       int(row.within_suggested), int(row.within_configured), target)
            for row in sorted(source.query("label_delay_suggestion", params), key=lambda r: r.model_version)]


def format_duration(value: timedelta) -> str:
    """A duration as the config writes it: 2d, 27h13m, 45m."""
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n) or "0m"
