"""One evaluation of one window, as ``run``, ``schedule`` and ``backfill`` all do it.

claim the window in the results store -> :func:`evaljobs.ops.runner.evaluate_job` -> write the
result in one transaction -> (live runs) push what is pending. The commands differ only in which
windows they ask for, whether a finished window is evaluated again (``replace``), and whether
results go to the Pushgateway (``push``). Time comes from the injected clock, read here at the
top of each step and passed down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from evaljobs.config import Config, Job
from evaljobs.errors import (EXIT_BUSY, EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, ConfigError, EvaljobsError, Interrupted,
                             SinkError)
from evaljobs.ops.runner import evaluate_job
from evaljobs.records import JobResult
from evaljobs.ops.runner import Runner
from evaljobs.sinks.pushgateway import PushgatewaySink
from evaljobs.ops.store import Claim, ClaimLost, Holder, PushReport, ResultsStore, job_status
from evaljobs.db.dialects import dialect_of
from evaljobs.db.engine import connect, describe_engine
from evaljobs.windows import Window, iso, latest_fire_time, span

log = logging.getLogger("evaljobs.runs")


def utc_now() -> datetime:
    """The real time, in UTC (the default clock)."""
    return datetime.now(timezone.utc)


def describe_window(window: Window) -> str:
    return f"{span(window.start, window.end)}"


@dataclass(frozen=True)
class RunOutcome:
    """What became of one window: ``ok``, ``partial``, ``empty``, ``failed`` or ``skipped``."""

    job: str
    window: Window
    status: str
    result: JobResult | None = None
    error: str | None = None
    seconds: float = 0.0
    #: Something the run did that its caller should say (a dead process's claim taken over).
    note: str | None = None

    def describe(self) -> str:
        what = f"job {self.job} window {describe_window(self.window)} (at {iso(self.window.evaluated_at)})"
        if self.status == "skipped":
            return f"skipped {what}: {self.error}"
        if self.status == "failed":
            return f"failed {what} after {self.seconds:.2f}s: {self.error}"
        result = self.result
        versions = ", ".join(v.model_version for v in result.versions) if result else ""
        predictions = sum(v.window_predictions for v in result.versions) if result else 0
        return (f"evaluated {what} in {self.seconds:.2f}s: {self.status}, "
                f"{len(result.versions) if result else 0} version(s) [{versions}], {predictions} prediction(s)")


class JobRuns:
    """Evaluates windows of a config's jobs into the results store, and pushes what is pending."""

    def __init__(self, runner: Runner, store: ResultsStore, sink: PushgatewaySink | None,
                 clock: Callable[[], datetime] = utc_now):
        self.runner = runner
        self.store = store
        self.sink = sink
        self.clock = clock
        self._active: dict[int, Claim] = {}
        self._lock = threading.Lock()

    def evaluate(self, job: Job, window: Window, origin: str, replace: bool, push: bool,
                 success_at: datetime | None = None) -> RunOutcome:
        """Claim ``window`` of ``job``, evaluate it and store the result (see the module docstring).

        A window another process holds (or, without ``replace``, one already finished) is
        skipped. An EvaljobsError of the evaluation is recorded as a failed run and re-raised;
        anything else (a stop, a bug) releases the claim and propagates. ``success_at`` is the
        time the stored metrics call the last success (default: when the run finished; a
        backfill passes the window's evaluation time).
        """
        claimed = self.store.claim(job.name, job.model, window, origin, self.clock(), replace)
        if isinstance(claimed, Holder):
            return RunOutcome(job.name, window, "skipped", error=claimed.describe())
        note = None
        if claimed.took_over:
            note = (f"took over the claim of job {job.name} window {describe_window(window)} from "
                    f"{claimed.took_over}, whose process is gone")
            log.info("%s", note)
        started_at, started = self.clock(), time.monotonic()
        with self._lock:
            self._active[threading.get_ident()] = claimed
        try:
            try:
                result = evaluate_job(self.runner.source(job), window, summaries=self.store)
                finished_at = self.clock()
                self.store.finish(claimed, result, success_timestamp=(success_at or finished_at).timestamp(),
                                  finished_at=finished_at,
                                  push=push and self.sink is not None)
            except ClaimLost:
                raise  # the window is another process's now: nothing of ours to record
            except EvaljobsError as exc:
                # The error that stopped the run is what the user sees; recording it is best effort
                # (the database may be what failed), and a claim left behind is taken over by the
                # next run on this host, or after results.claim_expiry elsewhere.
                unrecorded = self._settle(claimed, lambda: self.store.fail(claimed, str(exc), started_at, self.clock()))
                if unrecorded:
                    raise type(exc)(exc.message, "; ".join(filter(None, [exc.hint, unrecorded]))) from None
                raise
            except BaseException as exc:
                unreleased = self._settle(claimed, lambda: self.store.release(claimed))
                if isinstance(exc, Interrupted):
                    exc.notes.append(unreleased or "the window's claim was released")
                raise
        finally:
            with self._lock:
                self._active.pop(threading.get_ident(), None)
        return RunOutcome(job.name, window, job_status(result), result=result, seconds=time.monotonic() - started,
                          note=note)

    @staticmethod
    def _settle(claim: Claim, write: Callable[[], None]) -> str | None:
        """Run a claim's closing write; None when it worked, else one line saying what is left."""
        try:
            write()
        except EvaljobsError as exc:
            log.debug("could not close the claim %s: %s", claim.token, exc)
            return (f"its claim {claim.token} could not be released ({exc.message}); the next run on this host "
                    "takes it over, on another host after results.claim_expiry")
        return None

    def push_pending(self, job: Job) -> PushReport | None:
        """Push the job's pending results (newest per group); None without a Pushgateway.

        Raises SinkError when the gateway refuses or cannot be reached (results stay pending).
        """
        if self.sink is None:
            return None
        report = self.store.push_pending(job.name, lambda key, families: self.sink.push_group(job.name, key, families),
                                         self.clock())
        if report.pushed or report.superseded:
            windows = sorted({f"{span(start, end)}" for _, start, end in report.pushed})
            log.info("pushed %d group(s) of job %s (window %s) to %s%s", len(report.pushed), job.name,
                     ", ".join(windows) or "-", self.sink.url,
                     f"; {report.superseded} older pending result(s) superseded" if report.superseded else "")
        return report

    def active_claims(self) -> list[Claim]:
        """Claims held by evaluations running right now (in any thread)."""
        with self._lock:
            return list(self._active.values())

    def abandon_active(self) -> list[Claim]:
        """Release every claim of a running evaluation: for a stop that cannot wait for them.

        Safe while the evaluation still runs: its final write matches on the claim and, the
        claim gone, writes nothing.
        """
        abandoned = self.active_claims()
        for claim in abandoned:
            try:
                self.store.release(claim)
            except EvaljobsError as exc:
                log.error("could not release the claim of job %s window %s: %s", claim.job,
                          describe_window(claim.window), exc)
        return abandoned


def open_store(config: Config, runner: Runner) -> ResultsStore:
    """The config's results store: ``results.database``, else the jobs' own database."""
    settings = config.results
    if settings.database is None or settings.database == config.database:
        engine = runner.engine
    else:
        # The store makes its own tables on first use, so a new SQLite file is fine here.
        engine = connect(settings.database, create=True, setting="results.database", waits=config.waits())
    spec = dialect_of(engine.dialect.name)
    if not spec.results_store:
        raise ConfigError(
            f"the results store cannot live in {describe_engine(engine)} ({spec.notes})",
            "set results.database to a small PostgreSQL or SQLite database, e.g. sqlite:///evaljobs-results.db")
    return ResultsStore(engine, settings.claim_expiry)


def push_or_log(runs: JobRuns, job: Job, level: int = logging.ERROR) -> str | None:
    """Push pending results of ``job``; logs (at ``level``) and returns the error instead of raising."""
    try:
        runs.push_pending(job)
    except SinkError as exc:
        log.log(level, "%s", exc)
        return str(exc)
    return None


def job_at(job: Job, given: datetime | None, now: datetime) -> datetime:
    """The evaluation time of a run: ``given`` (``--at``) as is, else the job's latest schedule fire time.

    Aligning to the schedule makes ``run`` from cron evaluate the same window (the same
    results-store key) as the scheduler would for that fire, so their claims meet.
    """
    if given is not None:
        return given
    return latest_fire_time(job.schedule, now) or now


@dataclass
class RunReport:
    """What one ``run`` of some jobs did: the results, and what was skipped or failed."""

    results: list[JobResult] = field(default_factory=list)
    #: What the user should know but is no failure (one line each).
    notes: list[str] = field(default_factory=list)
    #: Windows skipped because another live run holds them (one line each): exit code 75.
    busy: list[str] = field(default_factory=list)
    #: Jobs whose evaluation failed (one line each).
    failures: list[str] = field(default_factory=list)
    #: Pushes that failed; the results stay pending in the store for the next run.
    push_errors: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 success, 1 a job or a push failed, 75 a window was busy, 3 partial (see :mod:`evaljobs.errors`)."""
        if self.failures or self.push_errors:
            return EXIT_FAILED
        if self.busy:
            return EXIT_BUSY
        if any(r.partial for r in self.results):
            return EXIT_PARTIAL
        return EXIT_OK


def run_once(
    config: Config,
    jobs: Sequence[Job],
    at: datetime | None = None,
    *,
    sink: PushgatewaySink | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    before_push: Callable[[list[JobResult]], None] = lambda results: None,
    refresh_summaries: bool = False,
) -> RunReport:
    """Evaluate one window of each job (at ``at``, else at its latest fire time) and push the results.

    A dry run changes nothing anywhere; every other run is claimed and stored in the results
    store, and what is pending (this run's results and any an earlier run could not push) is
    pushed to ``sink``. ``before_push`` sees the results first, so that they are on record
    even if the push then fails. ``refresh_summaries`` forgets each job's stored window parts
    first (a full recomputation that stores them anew). A failing job is reported and the others go on, except when
    there is only one job or the failure is a configuration error: then it is raised.
    """
    now = now or utc_now().replace(microsecond=0)
    if at is not None and at > now:
        # No label of a future window has arrived, and once stored and pushed, a future window
        # would make every real one look older (README, Failure behaviour).
        raise ConfigError(f"--at {iso(at)} is in the future (it is {iso(now)})",
                          "give a time up to now, or leave --at out to evaluate the latest scheduled window")
    report = RunReport()
    with Runner(config) as runner:
        runs = None if dry_run else JobRuns(runner, open_store(config, runner), sink)
        for job in jobs:
            try:
                if runs is None:
                    report.results.append(_logged(runner.evaluate(job, job_at(job, at, now))))
                    continue
                if refresh_summaries:
                    runs.store.clear_summaries(job.name)
                if sink is not None:
                    # What earlier runs could not push goes first; a failure is reported after this run's push.
                    push_or_log(runs, job, level=logging.DEBUG)
                outcome = runs.evaluate(job, runner.window(job, job_at(job, at, now)), origin="run",
                                        replace=True, push=True)
                if outcome.note:
                    report.notes.append(outcome.note)
                if outcome.result is None:
                    report.busy.append(outcome.describe())
                else:
                    report.results.append(_logged(outcome.result))
            except EvaljobsError as exc:
                report.failures.append(str(exc))
                if len(jobs) == 1 or isinstance(exc, ConfigError):
                    raise
        before_push(report.results)
        if runs is not None and sink is not None:
            for job in jobs:
                try:
                    runs.push_pending(job)
                except SinkError as exc:
                    report.push_errors.append(str(exc))
    return report


def _logged(result: JobResult) -> JobResult:
    log.info("job %s: window %s .. %s, %d version(s), %.2fs", result.job, result.window.start.isoformat(),
             result.window.end.isoformat(), len(result.versions), result.duration_seconds)
    return result
