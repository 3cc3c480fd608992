"""Drift of a 1,000,000-row window on PostgreSQL: peak memory of this process and timings.

The rows are generated inside PostgreSQL (``bench/drift_rows.sql``, generate_series) in a
throwaway schema: ``--rows`` predictions in the evaluated window and as many in the window
before (the reference), 80% labelled. Then the drift of one job (amount, account_age_days,
country, predicted_label, score and label, previous-window reference) is evaluated through
the same code path as ``evaljobs run``, and this prints:

* the peak resident set size of the process (``resource.getrusage(RUSAGE_SELF).ru_maxrss``),
  after start-up and after the drift run, against the 150 MB budget (exit 1 when over it);
* each value's query time as a ratio to the floor measured in the same run: a ``count(*)`` of
  the window's predictions (the scan) and of the window joined with its labels (the join).

Usage: ``python bench/drift_memory.py [--rows 1000000] [--database URL] [--keep]``
(``make bench-drift``). The database defaults to ``$EVALJOBS_BENCH_POSTGRES_URL``, else the
local test server ``postgresql+psycopg://postgres@127.0.0.1:5432/test``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import resource
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

from evaljobs.db import sqlfiles
from evaljobs.config import Job
from evaljobs.drift.evaluate import evaluate_drift
from evaljobs.db.engine import connect, create_reference_schema
from evaljobs.db.source import JobSource
from evaljobs.windows import plan_window

BUDGET_MB = 150
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
AT = datetime(2026, 11, 20, 0, 0, tzinfo=timezone.utc)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class QueryTimes(logging.Handler):
    """Collects the per-value timings evaljobs.drift logs at debug level."""

    pattern = re.compile(r"(numeric|categorical) drift summaries of '([^']+)' took ([0-9.]+)s")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.times: list[tuple[str, str, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = self.pattern.search(record.getMessage())
        if match:
            self.times.append((match.group(2), match.group(1), float(match.group(3))))


def timed(engine: sa.Engine, sql: str, params: dict) -> tuple[float, int]:
    with engine.connect() as conn:
        started = time.perf_counter()
        value = conn.execute(sa.text(sql), params).scalar_one()
        return time.perf_counter() - started, int(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="predictions in the evaluated window")
    parser.add_argument("--database", default=os.environ.get("EVALJOBS_BENCH_POSTGRES_URL", DEFAULT_URL))
    parser.add_argument("--keep", action="store_true", help="keep the generated schema (its name is printed)")
    args = parser.parse_args()
    at_start = peak_rss_mb()

    schema = f"evaljobs_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.database)
    if admin.dialect.name != "postgresql":
        print("bench/drift_memory.py needs PostgreSQL (it generates the rows with generate_series)", file=sys.stderr)
        return 2
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(args.database).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = connect(url.render_as_string(hide_password=False))
    try:
        window = plan_window(AT, timedelta(days=1), timedelta(0))
        started = time.perf_counter()
        create_reference_schema(engine)
        with engine.begin() as conn:
            for column, kind in (("amount", "DOUBLE PRECISION"), ("country", "VARCHAR(8)"),
                                 ("account_age_days", "DOUBLE PRECISION")):
                conn.execute(sa.text(f"ALTER TABLE predictions ADD COLUMN {column} {kind}"))
            conn.execute(sa.text("SELECT setseed(0.42)"))
            text = (Path(__file__).parent / "drift_rows.sql").read_text()
            for statement in [s for s in re.sub(r"--[^\n]*", "", text).split(";") if s.strip()]:
                conn.execute(sa.text(statement), {"rows": args.rows, "start": window.start - window.length,
                                                  "window_seconds": window.length.total_seconds()})
        generated = time.perf_counter() - started
        print(f"generated {2 * args.rows:,} predictions (+ labels) in PostgreSQL in {generated:.1f}s, schema {schema}")

        job = Job.model_validate({
            "name": "bench", "model": "fraud", "task": "binary", "positive_label": "1", "window": "1d",
            "schedule": "0 0 * * *",
            "drift": {"reference": {"kind": "previous_window"},
                      "features": ["amount", "account_age_days", {"name": "country", "kind": "categorical"}]},
        })
        source = JobSource(engine, job)
        source.check_schema()
        params = source.window_params(window)
        # The floors, measured now, on the same (warm) data: a scan of the window and the join.
        scan_sql = ("SELECT COUNT(*) FROM predictions WHERE model_name = :model "
                    "AND predicted_at >= :window_start AND predicted_at < :window_end")
        join_sql = "WITH " + sqlfiles.render("window_rows", source.identifiers()) + " SELECT COUNT(*) FROM window_rows"
        timed(engine, scan_sql, params)  # warm the cache once
        scan_seconds, window_rows = timed(engine, scan_sql, params)
        join_seconds, _ = timed(engine, join_sql, params)

        handler = QueryTimes()
        drift_log = logging.getLogger("evaljobs.drift")
        drift_log.addHandler(handler)
        drift_log.setLevel(logging.DEBUG)
        imports = peak_rss_mb()
        import scipy.stats  # noqa: F401  (drift imports it lazily; load it first so the run's own growth shows)
        before = peak_rss_mb()
        started = time.perf_counter()
        reports, problems = evaluate_drift(source, window, ["v2", "v3-canary"])
        drift_seconds = time.perf_counter() - started
        after = peak_rss_mb()

        print(f"window: {window_rows:,} predictions; reference: previous window, "
              f"{reports['v2'].reference.rows:,} predictions")
        print(f"floor: count(*) of the window {scan_seconds:.2f}s, of the window joined with labels {join_seconds:.2f}s")
        print(f"{'value':<18} {'kind':<12} {'seconds':>8} {'x scan':>7} {'x join':>7}")
        for name, kind, seconds in handler.times:
            print(f"{name:<18} {kind:<12} {seconds:>8.2f} {seconds / scan_seconds:>7.1f} {seconds / join_seconds:>7.1f}")
        print(f"{'all drift':<18} {'':<12} {drift_seconds:>8.2f} {drift_seconds / scan_seconds:>7.1f} "
              f"{drift_seconds / join_seconds:>7.1f}")
        for version, report in sorted(reports.items()):
            verdicts = ", ".join(f"{f.feature}={'DRIFT' if f.detected else 'no'}" for f in report.features)
            print(f"  {version}: {verdicts}")
        for problem in problems:
            print(f"  problem: {problem}")
        print(f"peak RSS: {at_start:.0f} MB at start, {imports:.0f} MB after generating the rows, "
              f"{before:.0f} MB with scipy.stats loaded, {after:.0f} MB after the drift run "
              f"(+{after - before:.1f} MB; budget {BUDGET_MB} MB)")
        within = after < BUDGET_MB and not problems
        print("OK" if within else "FAILED: over the memory budget or problems reported")
        return 0 if within else 1
    finally:
        engine.dispose()
        if args.keep:
            print(f"kept schema {schema}")
        else:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
