"""``evaljobs schedule``: every job of a config on its cron schedule, in one long-running process.

Built on APScheduler 3.x (``BlockingScheduler``, cron triggers in UTC) with ``coalesce`` (a
backlog of fires runs once), a misfire grace time and at most one running instance per job.
What the scheduler adds is what a results table makes possible:

- **Claims.** Each window is claimed in the results store before it is evaluated, so two
  schedulers (or a scheduler and a cron entry) never evaluate the same window at once, and a
  window already finished is not evaluated again.
- **Catch-up.** At start, and at every fire, a job looks back over its recent fire times
  (``catch_up``: a number of windows and/or an age) and evaluates those without a finished
  result -- downtime, or a run that failed. A job with no result at all evaluates only its
  latest window; gaps older than the limit are logged and left to ``evaljobs backfill``.
- **Push retry.** Every run first pushes what earlier runs could not (see
  :meth:`evaljobs.sinks.results.ResultsStore.push_pending`).
- **Clean stop.** SIGTERM or SIGINT stops new work; a running evaluation may finish within
  ``stop_timeout``. A second signal, or the timeout, abandons it: its claim is released and the
  process exits before its single result transaction commits, so no half result is written.

Time is read only from the injected clock, at the top of each run, and passed down.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import islice
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler

from evaljobs.config import CatchUp, Config, Job
from evaljobs.durations import format_duration
from evaljobs.errors import EXIT_OK, EvaljobsError, one_line
from evaljobs.ops.runs import JobRuns, describe_window, push_or_log, utc_now
from evaljobs.windows import cron_trigger, fire_times, iso, latest_fire_time, previous_fire_time

log = logging.getLogger("evaljobs.scheduler")

#: How many missed windows beyond the catch-up limit are counted for the log line.
_COUNT_LIMIT = 10_000


@dataclass(frozen=True)
class DuePlan:
    """The windows (by fire time, oldest first) one run of a job evaluates."""

    due: list[datetime]
    looked_at: list[datetime]
    beyond_catch_up: int = 0
    no_history: bool = False
    #: ``[from, to)`` of the missed fire times left out (for ``evaljobs backfill``).
    beyond_range: tuple[datetime, datetime] | None = None


def catch_up_candidates(schedule: str, now: datetime, catch_up: CatchUp, fired: datetime | None) -> list[datetime]:
    """Fire times a run looks back at, newest first.

    Up to ``catch_up.windows`` fire times before the current fire (or, at start, at or before
    ``now``), none older than ``now - catch_up.within``.
    """
    cursor = previous_fire_time(schedule, fired) if fired is not None else latest_fire_time(schedule, now)
    found: list[datetime] = []
    while cursor is not None:
        if catch_up.windows is not None and len(found) >= catch_up.windows:
            break
        if catch_up.within is not None and cursor < now - catch_up.within:
            break
        found.append(cursor)
        cursor = previous_fire_time(schedule, cursor)
    return found


def plan_due(schedule: str, now: datetime, catch_up: CatchUp, fired: datetime | None,
             done: set[datetime], last_done: datetime | None, has_history: bool) -> DuePlan:
    """Which fire times to evaluate: ``fired`` (if any, and not done) and missed candidates.

    ``done`` holds the finished fire times among the candidates; ``last_done`` is the job's
    latest finished one and ``has_history`` whether it has any row. A job without history
    evaluates only its current window (``fired``, or at start the newest candidate): catch-up
    is for downtime, and a new job's past is a backfill.
    """
    candidates = catch_up_candidates(schedule, now, catch_up, fired)
    if not has_history:
        # A new job: its current window (the fire, or at start the newest one), no history.
        first = [fired] if fired is not None else candidates[:1]
        return DuePlan(first, candidates, no_history=True)
    due = sorted(c for c in candidates if c not in done)
    if fired is not None and fired not in done:
        due.append(fired)
    oldest = candidates[-1] if candidates else fired
    if last_done is not None and oldest is not None and last_done < oldest:
        left_out = list(islice(fire_times(schedule, last_done + timedelta(seconds=1), oldest), _COUNT_LIMIT))
        if left_out:
            return DuePlan(sorted(set(due)), candidates, len(left_out), beyond_range=(left_out[0], oldest))
    return DuePlan(sorted(set(due)), candidates)


class Scheduler:
    """Runs a config's jobs on their schedules until stopped (see the module docstring).

    ``catch_up_only`` runs each job's catch-up once and stops; ``max_runs`` stops after that
    many scheduled (cron) runs. Both are real operating modes -- a one-shot "fill the gaps"
    after maintenance, a bounded run -- and what the process tests use.
    """

    def __init__(self, config: Config, runs: JobRuns, clock: Callable[[], datetime] = utc_now,
                 catch_up_only: bool = False, max_runs: int | None = None):
        self.config = config
        self.settings = config.scheduler
        self.runs = runs
        self.clock = clock
        self.catch_up_only = catch_up_only
        self.max_runs = max_runs
        self._stopping = threading.Event()
        self._abandon = threading.Event()
        self._lock = threading.Lock()
        self._busy = 0
        self._scheduled_runs = 0
        self._first_run_done: set[str] = set()
        self.scheduler = BlockingScheduler(
            timezone=timezone.utc,
            executors={"default": ThreadPoolExecutor(self.settings.max_parallel_jobs)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": max(1, int(self.settings.misfire_grace_time.total_seconds())),
            },
        )

    # ---- one run of one job -------------------------------------------------------------------
    def catch_up_of(self, job: Job) -> CatchUp:
        return job.catch_up or self.settings.catch_up

    def plan(self, job: Job, now: datetime, fired: datetime | None) -> DuePlan:
        """The due windows of ``job`` at ``now`` (results store lookups + :func:`plan_due`)."""
        candidates = catch_up_candidates(job.schedule, now, self.catch_up_of(job), fired)
        span = candidates + ([fired] if fired is not None else [])
        done = self.runs.store.done_fire_times(job.name, min(span), max(span)) if span else set()
        last_done, has_history = self.runs.store.history(job.name)
        return plan_due(job.schedule, now, self.catch_up_of(job), fired, done, last_done, has_history)

    def run_due(self, job: Job, now: datetime, fired: datetime | None) -> None:
        """Push what is pending, then evaluate every due window of ``job``, oldest first."""
        push_or_log(self.runs, job)
        plan = self.plan(job, now, fired)
        if plan.no_history and fired is None:
            log.info("job %s has no results yet: evaluating its latest window only (evaljobs backfill fills "
                     "past windows)", job.name)
        if plan.beyond_range:
            start, end = plan.beyond_range
            log.warning("job %s: %d missed window(s) older than its catch-up limit are left out; "
                        "fill them with: evaljobs backfill %s --from %s --to %s", job.name, plan.beyond_catch_up,
                        job.name, iso(start), iso(end))
        if not plan.due:
            log.info("job %s: nothing due at %s", job.name, iso(now))
        for fire in plan.due:
            if self._stopping.is_set():
                log.info("stopping: not starting job %s at %s", job.name, iso(fire))
                break
            window = self.runs.runner.window(job, fire)
            kind = "scheduled" if fire == fired else "catch-up"
            log.info("running job %s window %s (%s, fire time %s)", job.name, describe_window(window), kind,
                     iso(fire))
            started = time.monotonic()
            try:
                outcome = self.runs.evaluate(job, window, origin="schedule", replace=False, push=True)
            except EvaljobsError as exc:
                log.error("failed job %s window %s after %.2fs: %s", job.name, describe_window(window),
                          time.monotonic() - started, exc)
                continue
            log.info("%s", outcome.describe())
            # What `run` prints as warnings: partial results' problems and the data warnings.
            for problem in (outcome.result.problems + outcome.result.warnings) if outcome.result else ():
                log.warning("%s", one_line(str(problem)))
            if outcome.status != "skipped":
                push_or_log(self.runs, job)

    def run_job(self, job_name: str) -> None:
        """APScheduler's target: the first call of a job catches up, later ones are cron fires."""
        job = self.config.job(job_name)
        with self._lock:
            self._busy += 1
            first = job_name not in self._first_run_done
            self._first_run_done.add(job_name)
        try:
            now = self.clock()
            fired = None if first else latest_fire_time(job.schedule, now)
            try:
                self.run_due(job, now, fired)
            except EvaljobsError as exc:  # the results store itself failed: log, the next fire retries
                log.error("job %s: %s", job.name, exc)
        finally:
            with self._lock:
                self._busy -= 1
                if not first:
                    self._scheduled_runs += 1
                finished = (self.catch_up_only and len(self._first_run_done) == len(self.config.jobs)
                            and self._busy == 0)
                enough = self.max_runs is not None and self._scheduled_runs >= self.max_runs
            if finished:
                self.stop("catch-up done")
            elif enough:
                self.stop(f"{self._scheduled_runs} scheduled run(s) done (--max-runs)")

    # ---- the process --------------------------------------------------------------------------
    def stop(self, reason: str) -> None:
        """Start no new work; running evaluations may finish (see :meth:`serve`)."""
        if self._stopping.is_set():
            return
        log.info("stopping (%s)", reason)
        self._stopping.set()
        try:
            self.scheduler.shutdown(wait=False)
        except SchedulerNotRunningError:
            pass

    def _on_signal(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if not self._stopping.is_set():
            self.stop(f"{name}; a running evaluation may finish within "
                      f"{self.settings.stop_timeout.total_seconds():g}s, a second signal abandons it")
        else:
            log.warning("received %s again: abandoning running evaluations", name)
            self._abandon.set()

    def serve(self) -> int:
        """Run until stopped; returns the exit code (0 after a clean stop).

        Must be called from the main thread (it installs SIGTERM and SIGINT handlers).
        """
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            now = self.clock()
            for job in self.config.jobs:
                if self.catch_up_only:
                    self.scheduler.add_job(self.run_job, "date", run_date=now, args=[job.name], id=job.name,
                                           name=job.name)
                    continue
                self.scheduler.add_job(self.run_job, self._trigger(job), args=[job.name], id=job.name,
                                       name=job.name, next_run_time=now)
                log.info("job %s: schedule %r (UTC), window %s, catch-up %s", job.name, job.schedule,
                         format_duration(job.window), self._describe_catch_up(self.catch_up_of(job)))
            if not self._stopping.is_set():
                self.scheduler.start()
            return self._wait_for_running()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    @staticmethod
    def _trigger(job: Job) -> Any:
        return cron_trigger(job.schedule)

    @staticmethod
    def _describe_catch_up(catch_up: CatchUp) -> str:
        parts = []
        if catch_up.windows is not None:
            parts.append(f"{catch_up.windows} window(s)")
        if catch_up.within is not None:
            parts.append(f"within {format_duration(catch_up.within)}")
        return " and ".join(parts)

    def _wait_for_running(self) -> int:
        deadline = time.monotonic() + self.settings.stop_timeout.total_seconds()
        while True:
            with self._lock:
                busy = self._busy
            if busy == 0:
                break
            if self._abandon.is_set() or time.monotonic() >= deadline:
                abandoned = self.runs.abandon_active()
                for claim in abandoned:
                    log.warning("abandoned job %s window %s: no result written, its claim released; "
                                "it is evaluated again at the next start (catch-up) or run",
                                claim.job, describe_window(claim.window))
                log.info("scheduler stopped")
                _flush_logs()
                # The running evaluation is in a worker thread that cannot be interrupted inside
                # the database driver; leaving now ends it before its result transaction commits.
                os._exit(EXIT_OK)
            time.sleep(0.05)
        log.info("scheduler stopped")
        return EXIT_OK


def _flush_logs() -> None:
    for handler in logging.getLogger().handlers:
        try:
            handler.flush()
        except Exception:  # flushing is best effort on the way out
            pass
    sys.stdout.flush()
    sys.stderr.flush()
