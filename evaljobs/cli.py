"""The ``evaljobs`` command: a thin layer over :mod:`evaljobs.runner` and the sinks.

Exit codes: 0 success, 1 a run failed, 2 usage or configuration error, 3 partial (some
part of a job could not be evaluated; the rest was reported). Failures are one line on
stderr; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from . import report
from .config import Config, Job, load_config
from .errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    ConfigError,
    EvaljobsError,
    redact,
)
from .records import JobResult
from .runner import Runner
from .sinks import textfile
from .sinks.pushgateway import PushgatewaySink
from .windows import parse_timestamp

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
    run.add_argument("--output", choices=("table", "json"), default="table", help="stdout format")
    run.add_argument("--textfile", metavar="PATH",
                     help="also write a node_exporter textfile-collector file (no Pushgateway needed)")

    init = sub.add_parser("init-db", help="create the reference predictions and labels tables")
    init.add_argument("--database", help="SQLAlchemy URL (default: the config's database)")
    with_config(init)

    demo = sub.add_parser("demo-data", help="fill a database with realistic synthetic predictions and labels")
    demo.add_argument("--database", required=True, help="SQLAlchemy URL to write to (tables are replaced)")
    demo.add_argument("--now", type=_timestamp, help="end of the generated history (default: now)")
    demo.add_argument("--days", type=int, default=14, help="days of history (default 14)")
    demo.add_argument("--seed", type=int, default=7)
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
    sink = PushgatewaySink.from_config(config.pushgateway) if config.pushgateway else None
    if sink is None and not args.dry_run and not args.textfile:
        raise ConfigError("no Pushgateway configured",
                          "set pushgateway: in the config, pass --textfile PATH, or use --dry-run")
    at = args.at or now_utc()
    results: list[JobResult] = []
    failures: list[str] = []
    with Runner(config) as runner:
        for job in jobs:
            try:
                result = runner.evaluate(job, at)
                log.info("job %s: window %s .. %s, %d version(s), %.2fs", result.job, result.window.start.isoformat(),
                         result.window.end.isoformat(), len(result.versions), result.duration_seconds)
                results.append(result)
            except EvaljobsError as exc:
                failures.append(str(exc))
                if len(jobs) == 1 or isinstance(exc, ConfigError):
                    raise

    _print_results(results, args.output, pushgateway=None if args.dry_run or sink is None else sink.url)
    for failure in failures:
        print(f"evaljobs: error: {failure}", file=sys.stderr)
    if args.textfile:
        path = textfile.write(args.textfile, results)
        print(f"wrote metrics to {path}", file=sys.stderr)
    if sink is not None and not args.dry_run:
        for result in results:
            groups = sink.push(result)
            log.info("pushed %d group(s) of job %s to %s", groups, result.job, sink.url)
    for result in results:
        for problem in result.problems:
            print(f"evaljobs: warning: {problem}", file=sys.stderr)
    if failures:
        return EXIT_FAILED
    if any(r.partial for r in results):
        return EXIT_PARTIAL
    return EXIT_OK


def _print_results(results: list[JobResult], output: str, pushgateway: str | None) -> None:
    # Printed before pushing, so the numbers are on record even if the push then fails.
    if output == "json":
        print(report.as_json(results, {"pushgateway": pushgateway}))
    else:
        print(report.table(results))


@command("init-db")
def cmd_init_db(args: argparse.Namespace) -> int:
    from .sources import connect, create_reference_schema, describe_engine

    url = args.database or load_config(args.config).database
    engine = connect(url, create=True)
    create_reference_schema(engine)
    print(f"created the reference schema in {describe_engine(engine)}")
    return EXIT_OK


@command("demo-data")
def cmd_demo_data(args: argparse.Namespace) -> int:
    from . import demo

    summary = demo.build(args.database, now=args.now or now_utc(), days=args.days, seed=args.seed)
    print(summary)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``evaljobs`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    started = time.monotonic()
    try:
        code = COMMANDS[args.command](args)
    except EvaljobsError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"evaljobs: error: {exc}", file=sys.stderr)
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
    log.debug("%s took %.2fs", args.command, time.monotonic() - started)
    return code


if __name__ == "__main__":
    sys.exit(main())
