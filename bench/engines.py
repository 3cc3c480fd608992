"""The same evaljobs job on every engine, as ratios to that engine's own join floor (``make bench-engines``).

Each engine generates the same N predictions in its own SQL (deterministic formulas, no random
numbers, so every engine holds identical rows): 3 versions, a binary label with a score, a
latency, a numeric feature ``x``; 80% labelled. Then, each in a fresh process:

  floor       SELECT count(*) of the predictions-labels inner join over the window (the cost of
              reading; an inner join, since PostgreSQL drops a LEFT JOIN to a keyed labels table)
  core        ``evaljobs run`` of a binary job: confusion, ROC AUC, log loss, Brier, latency
  core+drift  the same job with drift of ``x`` (numeric: KS, Wasserstein, PSI) and of the predicted
              label against version v0 over the same window

Keys as the reference schema and ``make bench`` declare them: labels has one row per prediction
(a primary key on PostgreSQL and DuckDB, a unique index on SQLite), so evaljobs takes the
unique-label path instead of ranking labels, and predictions one row per (prediction_id,
model_version), so it need not look for conflicting duplicates. Spark's tables (Parquet) cannot
declare keys, so there evaluate_job ranks labels and looks for duplicates: that is part of its ratio.

Seconds are wall time of the process (``evaljobs run`` includes Python's start-up, about 1 s);
peak RSS is the client's (Spark's JVM is a server, not counted). Spark runs in a Thrift Server
started here (local[2], 2 GB), the others as configured by their URLs.

    python bench/engines.py [--rows 1000000] [--engines sqlite,postgresql,duckdb,spark]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
AT = "2026-01-31T00:00:00Z"  # the window is the 30 days before: every row

# One predictions row per g in 1..N, the same on every engine.
COLUMNS = """
    'p' || CAST(g AS {text}) AS prediction_id,
    'bench' AS model_name,
    'v' || CAST(g % 3 AS {text}) AS model_version,
    {at} AS predicted_at,
    CAST((g * 7919) % 2 AS {text}) AS predicted_label,
    CAST((g * 104729) % 1000003 AS DOUBLE{precision}) / 1000003.0 AS score,
    0.01 + CAST((g * 31) % 1000 AS DOUBLE{precision}) / 1000.0 AS latency_seconds,
    CAST((g * 13) % 997 AS DOUBLE{precision}) + CAST(g % 3 AS DOUBLE{precision}) * 5.0 AS x
"""
# Labels for 80% of the predictions: the prediction when (g * 17) % 10 < 7, else the other class.
LABELS = """
SELECT prediction_id,
       CASE WHEN (g * 17) % 10 < 7 THEN predicted_label WHEN predicted_label = '1' THEN '0' ELSE '1' END AS label,
       {labeled_at} AS labeled_at
FROM predictions_g WHERE g % 5 <> 0
"""
GENERATE = {
    "postgresql": ("FROM generate_series(1::bigint, :rows) AS g",
                   {"text": "TEXT", "precision": " PRECISION",
                    "at": "TIMESTAMPTZ '2026-01-01 00:00:00+00' + (g % 2592000) * INTERVAL '1 second'",
                    "labeled_at": "predicted_at + INTERVAL '1 hour'"}),
    "duckdb": ("FROM range(1, :rows + 1) AS t(g)",
               {"text": "VARCHAR", "precision": "",
                "at": "TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(g % 2592000)",
                "labeled_at": "predicted_at + INTERVAL 1 HOUR"}),
    "sqlite": ("FROM (WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < :rows) SELECT g FROM n)",
               {"text": "TEXT", "precision": "",
                "at": "datetime('2026-01-01 00:00:00', '+' || (g % 2592000) || ' seconds')",
                "labeled_at": "datetime(predicted_at, '+1 hour')"}),
    "hive": ("FROM (SELECT id AS g FROM range(1, :rows + 1))",
             {"text": "STRING", "precision": "",
              "at": "timestamp_seconds(1767225600 + g % 2592000)",
              "labeled_at": "predicted_at + INTERVAL 1 HOUR"}),
}
# Declared keys (see the module docstring) and the reference schema's indexes, per engine.
KEYS = {
    "postgresql": ("ALTER TABLE predictions ADD PRIMARY KEY (prediction_id, model_version)",
                   "ALTER TABLE labels ADD PRIMARY KEY (prediction_id)",
                   "CREATE INDEX predictions_model_time ON predictions (model_name, predicted_at)",
                   "ANALYZE"),
    "sqlite": ("CREATE UNIQUE INDEX predictions_key ON predictions (prediction_id, model_version)",
               "CREATE UNIQUE INDEX labels_key ON labels (prediction_id)",
               "CREATE INDEX predictions_model_time ON predictions (model_name, predicted_at)",
               "ANALYZE"),
    "duckdb": ("ALTER TABLE predictions ADD PRIMARY KEY (prediction_id, model_version)",
               "ALTER TABLE labels ADD PRIMARY KEY (prediction_id)"),
}
FLOOR = """
SELECT count(*) FROM predictions p JOIN labels l ON l.prediction_id = p.prediction_id AND l.labeled_at < :asof
WHERE p.model_name = 'bench' AND p.predicted_at >= :start AND p.predicted_at < :end
"""


def generate(url: str, rows: int) -> float:
    """Create predictions and labels at ``url``; returns the seconds it took."""
    from evaljobs.db.engine import connect

    engine = connect(url, create=True)
    dialect = engine.dialect.name
    source, names = GENERATE[dialect]
    using = " USING parquet" if dialect == "hive" else ""
    started = time.perf_counter()
    with engine.connect() as conn:
        for table in ("labels", "predictions", "predictions_g"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(sa.text(f"CREATE TABLE predictions_g{using} AS SELECT g, {COLUMNS.format(**names)} {source}"),
                     {"rows": rows})
        conn.execute(sa.text(f"CREATE TABLE labels{using} AS {LABELS.format(**names)}"))
        conn.execute(sa.text(f"CREATE TABLE predictions{using} AS SELECT prediction_id, model_name, model_version, "
                             "predicted_at, predicted_label, score, latency_seconds, x FROM predictions_g"))
        conn.execute(sa.text("DROP TABLE predictions_g"))
        for statement in KEYS.get(dialect, ()):
            conn.execute(sa.text(statement))
        conn.commit()
    engine.dispose()
    return time.perf_counter() - started


def floor(url: str) -> str:
    """The floor, in this process: count(*) of the join."""
    from datetime import datetime, timezone

    from evaljobs.db.dialects import bind_time
    from evaljobs.db.engine import connect

    engine = connect(url)
    bounds = {"asof": datetime(2026, 1, 31, tzinfo=timezone.utc), "start": datetime(2026, 1, 1, tzinfo=timezone.utc),
              "end": datetime(2026, 1, 31, tzinfo=timezone.utc)}
    with engine.connect() as conn:
        n = conn.execute(sa.text(FLOOR), {k: bind_time(engine.dialect.name, v) for k, v in bounds.items()}).scalar_one()
    engine.dispose()
    return f"{n:,} joined rows"


def keyed(url: str, directory: Path) -> str:
    """What evaljobs itself sees of the declared keys (so a table says which path it measured);
    exits when an engine that should declare them does not."""
    from evaljobs.config import load_config
    from evaljobs.db.engine import connect
    from evaljobs.db.source import JobSource

    engine = connect(url)
    source = JobSource(engine, load_config(config(directory, url, False)).jobs[0])
    source.check_schema()
    engine.dispose()
    if engine.dialect.name in KEYS and not (source.labels_unique and source.predictions_unique):
        raise SystemExit(f"{engine.dialect.name}: the declared keys are not seen (labels unique: "
                         f"{source.labels_unique}, predictions unique: {source.predictions_unique})")
    return "keys declared: unique-label path" if source.labels_unique else "no keys: labels ranked"


def config(directory: Path, url: str, drift: bool) -> Path:
    job = {"name": "bench", "model": "bench", "task": "binary", "positive_label": "1", "window": "30d",
           "label_delay": "0s", "schedule": "0 0 * * *"}
    if drift:
        job["drift"] = {"reference": {"kind": "version", "version": "v0"}, "features": [{"name": "x", "kind": "numeric"}],
                        "score": False, "label": False}
    path = directory / f"bench-{'drift' if drift else 'core'}.json"
    path.write_text(json.dumps({"database": url, "jobs": [job]}))  # YAML is a superset of JSON
    return path


def measure(url: str, directory: Path) -> dict[str, tuple[float, float, str]]:
    results = {}
    # Python start-up is in every measurement, so the floor is a fresh process too.
    results["floor"] = _measured([sys.executable, __file__, "--floor", url])
    for name, drift in (("core", False), ("core+drift", True)):
        results[name] = _measured([sys.executable, "-m", "evaljobs", "run", "bench", "--config",
                                   str(config(directory, url, drift)), "--at", AT, "--dry-run", "--output", "json"])
    return results


def _measured(command: list[str]) -> tuple[float, float, str]:
    # subprocess reaps its child itself; /usr/bin/time reports the child's own peak RSS.
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")
    rss_kb = int(done.stderr.strip().splitlines()[-1])
    detail = done.stdout.strip()
    if detail.startswith("{"):
        result = json.loads(detail)["jobs"][0]
        problems = result["problems"]
        if problems:
            raise SystemExit(f"{' '.join(command)}: {problems}")
        versions = result["versions"]
        detail = f"{len(versions)} versions, {sum(v['window_predictions'] for v in versions):,} predictions"
        drifted = [f["feature"] for v in versions for f in (v.get("drift") or {}).get("features", [])]
        if drifted:
            detail += f", drift of {', '.join(sorted(set(drifted)))}"
    return seconds, rss_kb / 1024, detail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--engines", default="sqlite,postgresql,duckdb,spark")
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_URL", POSTGRES))
    parser.add_argument("--spark-url", help="a running Spark Thrift Server (hive://host:port) instead of starting one")
    parser.add_argument("--floor", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        print(floor(args.floor))
        return 0
    from dev import localservices

    table = []
    with tempfile.TemporaryDirectory(prefix="evaljobs-bench-engines-") as tmp:
        directory = Path(tmp)
        for engine in args.engines.split(","):
            server = None
            cleanup = None
            if engine == "sqlite":
                url = f"sqlite:///{directory / 'bench.db'}"
            elif engine == "duckdb":
                url = f"duckdb:///{directory / 'bench.duckdb'}"
            elif engine == "postgresql":
                schema = f"evaljobs_bench_{uuid.uuid4().hex[:8]}"
                admin = sa.create_engine(args.postgres_url)
                with admin.begin() as conn:
                    conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
                url = str(sa.engine.make_url(args.postgres_url).update_query_dict({"options": f"-csearch_path={schema}"}))

                def cleanup(admin=admin, schema=schema) -> None:
                    with admin.begin() as conn:
                        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                    admin.dispose()
            elif engine == "spark" and args.spark_url:
                url = f"{args.spark_url.rstrip('/')}/default"
            elif engine == "spark":
                started = time.perf_counter()
                server = localservices.start_spark_thrift_server(directory / "spark", log_path=directory / "spark.log")
                url = f"{server.url}/default"
                print(f"spark: Thrift Server listening after {time.perf_counter() - started:.0f}s", flush=True)
            else:
                raise SystemExit(f"unknown engine {engine!r}")
            try:
                seconds = generate(url, args.rows)
                print(f"{engine}: generated {args.rows:,} predictions in {seconds:.1f}s; {keyed(url, directory)}",
                      flush=True)
                for name, (wall, rss, detail) in measure(url, directory).items():
                    table.append((engine, name, wall, rss, detail))
                    print(f"  {name:<11}{wall:8.2f}s {rss:6.0f} MB  {detail}", flush=True)
            finally:
                if server is not None:
                    server.stop(timeout=30)
                if cleanup is not None:
                    cleanup()
    print(f"\n{args.rows:,} predictions, 3 versions, ~80% labelled; one fresh process per measurement")
    print(f"{'engine':<12}{'measurement':<12}{'seconds':>9}{'x floor':>9}{'peak RSS':>10}")
    floors = {engine: wall for engine, name, wall, _, _ in table if name == "floor"}
    for engine, name, wall, rss, _ in table:
        print(f"{engine:<12}{name:<12}{wall:>9.2f}{wall / floors[engine]:>9.2f}{rss:>8.0f}MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
