"""The ``evaljobs`` command: a thin layer over :mod:`evaljobs.runner` and the sinks.

Exit codes: 0 success, 1 a run failed, 2 usage or configuration error, 3 partial (some
part of a job could not be evaluated; the rest was reported). Failures are one line on
stderr; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

from evaljobs import report
from evaljobs.config import Config, Job, load_config
from evaljobs.errors import (
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    ConfigError,
    EvaljobsError,
    Interrupted,
    one_line,
    redact,
)
from evaljobs.ops.runs import JobRuns, open_store, run_once
from evaljobs.records import JobResult
from evaljobs.ops.runner import Runner
from evaljobs.sinks import textfile
from evaljobs.sinks.files import check_directory
from evaljobs.sinks.pushgateway import PushgatewaySink
from evaljobs.windows import iso, parse_timestamp

log = logging.getLogger("evaljobs")

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def register(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = func
        return func
    return register


def _timestamp(text: str) -> datetime:
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share between 0 and 1 (e.g. 0.9)")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def now_utc() -> datetime:
    """The current time in UTC, to the second (windows are planned from it)."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaljobs",
        description="Evaluate deployed models from stored predictions and late labels; push to Prometheus.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--verbose", "-v", action="store_true", help="log what ran and what was pushed")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", "-c", default=os.environ.get("EVALJOBS_CONFIG", "schedules.yaml"),
                       help="schedule file (default: $EVALJOBS_CONFIG or schedules.yaml)")

    run = sub.add_parser("run", help="evaluate one window of one job (or --all) and push the results")
    run.add_argument("job", nargs="?", help="job name from the config")
    run.add_argument("--all", action="store_true", help="run every job of the config")
    with_config(run)
    run.add_argument("--at", type=_timestamp, help="evaluation time, ISO 8601 (default: now)")
    run.add_argument("--dry-run", action="store_true", help="print the results, push nothing")
    run.add_argument("--refresh-summaries", action="store_true",
                     help="forget the job's stored window parts first: recompute the whole window (README, "
                          "Incremental windows)")
    run.add_argument("--output", choices=("table", "json"), default="table", help="stdout format")
    run.add_argument("--explain", action="store_true",
                     help="also print each job's window and how late its labels arrive, with a suggested label_delay")
    run.add_argument("--explain-coverage", type=_share, default=0.9, metavar="SHARE",
                     help="the share of arriving labels the suggested label_delay must catch (default 0.9)")
    run.add_argument("--textfile", metavar="PATH",
                     help="also write a node_exporter textfile-collector file (no Pushgateway needed)")

    doctor = sub.add_parser("doctor", help="check what a job needs (tables, columns, types, indexes, label keys, "
                                           "work_mem, the Pushgateway): one line per finding with its fix; "
                                           "exit 1 when something blocks a run")
    doctor.add_argument("job", help="job name from the config")
    with_config(doctor)

    init = sub.add_parser("init-db", help="create the reference predictions and labels tables")
    init.add_argument("--database", help="SQLAlchemy URL (default: the config's database)")
    with_config(init)

    demo = sub.add_parser("demo-data", help="fill a database with realistic synthetic predictions and labels")
    demo.add_argument("--database", required=True, help="SQLAlchemy URL to write to (tables are replaced)")
    demo.add_argument("--now", type=_timestamp, help="end of the generated history (default: now)")
    demo.add_argument("--days", type=int, default=14, help="days of history (default 14)")
    demo.add_argument("--seed", type=int, default=7)

    assets = sub.add_parser("assets", help="write the shipped Prometheus rules (with their promtool tests), scrape "
                                           "config and Grafana dashboard into a directory")
    assets.add_argument("--dir", required=True, metavar="DIR", help="directory to write prometheus/ and grafana/ into")

    # ---- operations: scheduler, backfill, CI gate -----------------------------------------------
    schedule = sub.add_parser("schedule", help="run every job on its cron schedule (long-running; SIGTERM stops it "
                                               "cleanly)")
    with_config(schedule)
    schedule.add_argument("--catch-up-only", action="store_true",
                          help="evaluate every job's missed windows (catch_up), push, and exit")
    schedule.add_argument("--max-runs", type=_positive, metavar="N",
                          help="stop after N scheduled runs, all jobs counted (catch-up runs at start not counted)")

    backfill = sub.add_parser("backfill", help="evaluate every window of a past range into the results table and an "
                                               "OpenMetrics file; never pushes")
    backfill.add_argument("job", help="job name from the config")
    with_config(backfill)
    backfill.add_argument("--from", dest="start", type=_timestamp, required=True,
                          help="first evaluation time, ISO 8601 (windows at the job's fire times in [from, to))")
    backfill.add_argument("--to", dest="end", type=_timestamp, required=True, help="end of the range, ISO 8601")
    backfill.add_argument("--openmetrics", metavar="FILE",
                          help="also write the windows as OpenMetrics for promtool tsdb create-blocks-from openmetrics")

    gate = sub.add_parser("gate", help="check a model version against the job's gate: thresholds; exit 1 on failure")
    gate.add_argument("job", help="job name from the config")
    with_config(gate)
    gate.add_argument("--candidate", metavar="VERSION", help="version under test (default: the only one in the window)")
    gate.add_argument("--baseline", metavar="VERSION", help="version to compare with (max_regression)")
    gate.add_argument("--at", type=_timestamp, help="evaluation time, ISO 8601 (default: now)")
    gate.add_argument("--markdown", metavar="FILE", help="write a Markdown summary (e.g. $GITHUB_STEP_SUMMARY)")
    gate.add_argument("--junit", metavar="FILE", help="write JUnit XML, one test case per threshold")
    gate.add_argument("--html", metavar="FILE", help="write a self-contained HTML page with the intervals drawn")

    report_ = sub.add_parser("report", help="draw a job's stored results (the results store) as one self-contained "
                                            "HTML page; evaluates nothing")
    report_.add_argument("job", help="job name from the config")
    with_config(report_)
    report_.add_argument("--from", dest="start", type=_timestamp,
                         help=f"windows ending after this, ISO 8601 (default: --to minus {REPORT_DAYS} days)")
    report_.add_argument("--to", dest="end", type=_timestamp, help="windows ending at or before this (default: now)")
    report_.add_argument("--html", metavar="FILE", help="write the page here (offline: everything inlined)")
    return parser


def _jobs(config: Config, args: argparse.Namespace) -> list[Job]:
    if args.all and args.job:
        raise ConfigError("give a job name or --all, not both")
    if args.all:
        return list(config.jobs)
    if not args.job:
        raise ConfigError("which job? give a job name or --all",
                          f"jobs in {args.config}: {', '.join(j.name for j in config.jobs)}")
    return [config.job(args.job)]


@command("run")
def cmd_run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    jobs = _jobs(config, args)
    if args.textfile:
        check_directory(args.textfile, "--textfile")
    sink = PushgatewaySink.from_config(config.pushgateway) if config.pushgateway else None
    if sink is None and not args.dry_run and not args.textfile:
        raise ConfigError("no Pushgateway configured",
                          "set pushgateway: in the config, pass --textfile PATH, or use --dry-run")

    def show(results: list[JobResult]) -> None:
        _print_results(results, args.output, pushgateway=None if args.dry_run or sink is None else sink.url)
        if args.textfile:
            path = textfile.write(args.textfile, results)
            print(f"wrote metrics to {path}", file=sys.stderr)

    if args.explain and args.output == "json":
        raise ConfigError("--explain prints a table", "leave out --output json (the JSON has each version's label_delay)")
    report = run_once(config, jobs, args.at, sink=sink, dry_run=args.dry_run, now=now_utc(), before_push=show,
                      refresh_summaries=args.refresh_summaries)
    if args.explain:
        _explain(config, report.results, args.explain_coverage)
    for note in report.notes:
        print(f"evaljobs: note: {note}", file=sys.stderr)
    for busy in report.busy:
        print(f"evaljobs: note: {busy}; nothing evaluated, exit code {EXIT_BUSY}: try again later", file=sys.stderr)
    for failure in report.failures + report.push_errors:
        print(f"evaljobs: error: {failure}", file=sys.stderr)
    for result in report.results:
        for problem in result.problems + result.warnings:
            print(f"evaljobs: warning: {one_line(redact(str(problem)))}", file=sys.stderr)
    return report.exit_code


def _explain(config: Config, results: list[JobResult], target: float) -> None:
    """Each job's window, and how late its labels arrive with a suggested label_delay (--explain)."""
    from evaljobs.quality.label_delay import suggest_label_delays
    from evaljobs.report import explain_section

    with Runner(config) as runner:
        for result in results:
            job = config.job(result.job)
            print(explain_section(job, result.window, suggest_label_delays(runner.source(job), result.window, target)))


def _print_results(results: list[JobResult], output: str, pushgateway: str | None) -> None:
    # Printed before pushing, so the numbers are on record even if the push then fails.
    if output == "json":
        print(report.as_json(results, {"pushgateway": pushgateway}))
    else:
        print(report.table(results))


@command("doctor")
def cmd_doctor(args: argparse.Namespace) -> int:
    from evaljobs.ops.doctor import diagnose

    config = load_config(args.config)
    job = config.job(args.job)
    findings = diagnose(config, job)
    for finding in findings:
        print(finding.line())
    return EXIT_FAILED if any(f.level == "error" for f in findings) else EXIT_OK


@command("init-db")
def cmd_init_db(args: argparse.Namespace) -> int:
    from evaljobs.db.engine import connect, create_reference_schema, describe_engine

    url = args.database or load_config(args.config).database
    engine = connect(url, create=True)
    create_reference_schema(engine)
    print(f"created the reference schema in {describe_engine(engine)}")
    return EXIT_OK


@command("demo-data")
def cmd_demo_data(args: argparse.Namespace) -> int:
    from evaljobs import demodata

    summary = demodata.build(args.database, now=args.now or now_utc(), days=args.days, seed=args.seed)
    print(summary)
    return EXIT_OK


@command("assets")
def cmd_assets(args: argparse.Namespace) -> int:
    from evaljobs.assets import write_assets

    for path in write_assets(args.dir):
        print(path)
    return EXIT_OK


# ---- operations: scheduler, backfill, CI gate ---------------------------------------------------
def _report_progress(args: argparse.Namespace) -> None:
    """Long-running commands say what they do (INFO) without --debug."""
    logging.getLogger("evaljobs").setLevel(logging.DEBUG if args.debug else logging.INFO)


@command("schedule")
def cmd_schedule(args: argparse.Namespace) -> int:
    from evaljobs.ops.scheduler import Scheduler

    config = load_config(args.config)
    _report_progress(args)
    sink = PushgatewaySink.from_config(config.pushgateway) if config.pushgateway else None
    if sink is None:
        log.warning("no pushgateway configured: results go to the results table only")
    with Runner(config) as runner:
        runs = JobRuns(runner, open_store(config, runner), sink)
        runs.store.ensure_schema()
        for job in config.jobs:  # a wrong table or column should stop the start, not every run
            runner.source(job)
        return Scheduler(config, runs, catch_up_only=args.catch_up_only, max_runs=args.max_runs).serve()


#: Prometheus advises leaving the newest ~3 hours (the head block's span) to the live path.
RECENT_FOR_BACKFILL = timedelta(hours=3)


@command("backfill")
def cmd_backfill(args: argparse.Namespace) -> int:
    from evaljobs.ops.backfill import Progress, backfill, plan_backfill
    from evaljobs.sinks import openmetrics

    config = load_config(args.config)
    job = config.job(args.job)
    if args.openmetrics:
        check_directory(args.openmetrics, "--openmetrics")
    now = now_utc()  # labels as of now: a backfill uses every label known today
    fires = plan_backfill(job, args.start, args.end, labels_as_of=now)
    with Runner(config) as runner:
        runs = JobRuns(runner, open_store(config, runner), sink=None)
        report = backfill(runs, job, fires, labels_as_of=now,
                          progress=lambda total: Progress(total, f"backfill {job.name}"))
    if args.openmetrics:
        path = openmetrics.write(args.openmetrics, report.results)
        print(f"wrote {len(report.results)} window(s) as OpenMetrics to {path}", file=sys.stderr)
        if any(fire > now - RECENT_FOR_BACKFILL for fire in report.fires):
            print("evaljobs: warning: the range reaches into the last 3 hours, which Prometheus advises leaving to "
                  "the live path (the head block); see README, Backfill", file=sys.stderr)
    for failure in report.failures:
        print(f"evaljobs: error: {failure}", file=sys.stderr)
    counts = ", ".join(f"{report.count(s)} {s}" for s in ("ok", "partial", "empty", "failed", "skipped")
                       if report.count(s))
    print(f"backfilled job {job.name}: {len(report.fires)} window(s) at its fire times in "
          f"[{iso(args.start)}, {iso(args.end)}), labels as of "
          f"{iso(now)}: {counts}; stored in the results table, nothing pushed")
    if report.complete:
        return EXIT_OK
    return EXIT_PARTIAL if report.results else EXIT_FAILED


@command("gate")
def cmd_gate(args: argparse.Namespace) -> int:
    from evaljobs.ops.gate import check_gate
    from evaljobs.sinks import gatereport

    config = load_config(args.config)
    job = config.job(args.job)
    if job.gate is None:
        raise ConfigError(f"job {job.name!r} has no gate: section",
                          "add thresholds to the job, e.g. gate: {min_accuracy: 0.9} (see README, CI gate)")
    if args.html:
        from evaljobs.sinks import html

        html.plotly_modules()  # a missing extra is said before evaluating
    started = time.monotonic()
    with Runner(config) as runner:
        result = runner.evaluate(job, args.at or now_utc())
    report = check_gate(job.gate, result, args.candidate, args.baseline)
    summary = gatereport.markdown(report)
    print(summary, end="")
    if args.markdown:
        gatereport.write(args.markdown, summary, "Markdown summary", "--markdown")
    if args.junit:
        gatereport.write(args.junit, gatereport.junit(report, time.monotonic() - started), "JUnit report", "--junit")
    if args.html:
        html.write(args.html, gatereport.html_page(report, result))
    return EXIT_OK if report.passed else EXIT_FAILED


#: The default range of ``evaljobs report``.
REPORT_DAYS = 30


@command("report")
def cmd_report(args: argparse.Namespace) -> int:
    from evaljobs.sinks import html

    config = load_config(args.config)
    job = config.job(args.job)
    if args.html:
        html.plotly_modules()  # a missing extra is said before the store is read
    until = args.end or now_utc()
    since = args.start or until - timedelta(days=REPORT_DAYS)
    if since >= until:
        raise ConfigError(f"--from {iso(since)} is not before --to {iso(until)}",
                          "give a --from earlier than --to")
    with Runner(config) as runner:
        rows = open_store(config, runner).report_rows(job.name, since, until)
    data = html.JobReport.from_rows(job.name, job.model, since, until, job.gate, rows)
    if not data.windows:
        raise EvaljobsError(f"job {job.name!r}: the results store has no window ending in "
                            f"({iso(since)}, {iso(until)}]",
                            "widen --from/--to, or store results first with evaljobs run, schedule or backfill")
    print("\n".join(html.summary_lines(data)))
    if args.html:
        path = html.write(args.html, html.job_report(data))
        print(f"wrote the HTML report to {path}", file=sys.stderr)
    return EXIT_OK


class RedactingFormatter(logging.Formatter):
    """Log lines with credentials hidden (see :func:`evaljobs.errors.redact`), whatever logs them."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


#: Signals that stop a command, and the exit code of each (128 + the signal's number).
STOP_SIGNALS = {signal.SIGTERM: 128 + signal.SIGTERM, signal.SIGINT: 128 + signal.SIGINT}


def _raise_interrupted(signum: int, _frame: object) -> None:
    # Cron, systemd and Kubernetes stop with SIGTERM: as an exception, it runs the same
    # clean-up as Ctrl-C (the run's claim is released) instead of killing the process outright.
    for stop in STOP_SIGNALS:
        signal.signal(stop, signal.SIG_DFL)  # a second signal stops at once
    raise Interrupted(signal.Signals(signum).name, STOP_SIGNALS[signal.Signals(signum)])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``evaljobs`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING,
        handlers=[handler],
    )
    started = time.monotonic()
    # The scheduler handles its own stop signals (a graceful stop that lets a run finish).
    own_handlers = args.command != "schedule" and threading.current_thread() is threading.main_thread()
    previous = {stop: signal.signal(stop, _raise_interrupted) for stop in STOP_SIGNALS} if own_handlers else {}
    try:
        code = COMMANDS[args.command](args)
    except EvaljobsError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"evaljobs: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Interrupted as exc:
        print(f"evaljobs: terminated by {exc.signal_name}" + "".join(f"; {n}" for n in exc.notes), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("evaljobs: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so in one line unless asked for the traceback
        if args.debug:
            traceback.print_exc()
        print(f"evaljobs: internal error: {type(exc).__name__}: {redact(str(exc)).splitlines()[0] if str(exc) else ''}"
              " (rerun with --debug for the traceback, and please report it)", file=sys.stderr)
        return EXIT_FAILED
    finally:
        for stop, before in previous.items():
            signal.signal(stop, before)
    log.debug("%s took %.2fs", args.command, time.monotonic() - started)
    return code


if __name__ == "__main__":
    sys.exit(main())
