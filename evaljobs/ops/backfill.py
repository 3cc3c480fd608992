"""``evaljobs backfill``: evaluate every window of a job in a past range, never touching the Pushgateway.

The windows are those of the job's schedule: one per cron fire time in ``[from, to)``, each
evaluated as the live run at that time would have been, but with the labels known **now**
(``labels_as_of`` is the real current time, passed in): a backfill is how late labels, a fixed
bug or a new model get into the history. Each window is claimed and stored in the results
table like any run (``origin = 'backfill'``, ``push_status = 'none'``); the OpenMetrics file
for ``promtool`` is written from the same records.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from evaljobs.config import Job
from evaljobs.errors import ConfigError, EvaljobsError
from evaljobs.ops.runs import JobRuns, RunOutcome, describe_window
from evaljobs.records import JobResult
from evaljobs.windows import fire_times, iso


@dataclass
class BackfillReport:
    """What a backfill did, window by window."""

    fires: list[datetime]
    results: list[JobResult] = field(default_factory=list)
    outcomes: list[RunOutcome] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def complete(self) -> bool:
        return not self.failures and all(o.status in ("ok", "empty") for o in self.outcomes)


class Progress:
    """A progress bar on a terminal, one plain line per window otherwise (logs, CI)."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, width: int = 30):
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.bar = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()

    def update(self, done: int, line: str) -> None:
        if self.bar:
            filled = int(self.width * done / max(self.total, 1))
            elapsed = time.monotonic() - self.started
            eta = elapsed / done * (self.total - done) if done else 0.0
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                              f"{done}/{self.total} eta {eta:.0f}s ")
        else:
            self.stream.write(f"{self.label}: {done}/{self.total} {line}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.bar:
            self.stream.write("\n")
            self.stream.flush()


def plan_backfill(job: Job, start: datetime, end: datetime, labels_as_of: datetime) -> list[datetime]:
    """The fire times of ``job`` in ``[start, end)``; a ConfigError for a range that makes no sense.

    Pure, so the command checks its arguments before it connects to anything.
    """
    if start >= end:
        raise ConfigError(f"--from {iso(start)} is not before --to {iso(end)}",
                          "give a range with --from earlier than --to")
    if end > labels_as_of:
        raise ConfigError(f"--to {iso(end)} is in the future",
                          "backfill covers past windows; the live path (run, schedule) covers the present")
    fires = list(fire_times(job.schedule, start, end))
    if not fires:
        raise ConfigError(f"job {job.name!r}: schedule {job.schedule!r} does not fire between "
                          f"{iso(start)} and {iso(end)}", "widen --from/--to")
    return fires


def backfill(runs: JobRuns, job: Job, fires: list[datetime], labels_as_of: datetime,
             progress: Callable[[int], Progress] | None = None) -> BackfillReport:
    """Evaluate and store the window of ``job`` at every fire time in ``fires`` (see :func:`plan_backfill`).

    ``progress(total)`` makes the progress display (see :class:`Progress`).
    """
    report = BackfillReport(fires)
    bar = progress(len(fires)) if progress else None
    try:
        for index, fire in enumerate(fires, start=1):
            window = runs.runner.window(job, fire, labels_as_of)
            try:
                outcome = runs.evaluate(job, window, origin="backfill", replace=True, push=False, success_at=fire)
            except ConfigError:
                raise
            except EvaljobsError as exc:
                report.failures.append(f"window {describe_window(window)}: {exc}")
                outcome = RunOutcome(job.name, window, "failed", error=str(exc))
            report.outcomes.append(outcome)
            if outcome.result is not None:
                report.results.append(outcome.result)
            if bar:
                bar.update(index, outcome.describe())
    finally:
        if bar:
            bar.close()
    return report
