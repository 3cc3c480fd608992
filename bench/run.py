"""`make bench`: what a user runs, timed against the database's own floor in the same run.

Data (``bench/data.sql``, generated inside PostgreSQL with generate_series) lives in the schema
``bench9`` and is kept between runs while it has the asked row count, so reruns skip it.
Every measurement is ONE FRESH PROCESS; its wall time and peak RSS come from ``os.wait4``
(the kernel's rusage of that child alone). Each is repeated (median of ``--repeat``, 3):

  floor            SELECT count(*) of predictions JOIN labels over the window (timed around
                   the query only, so the floor carries no interpreter start-up)
  group by         one GROUP BY version, label, predicted_label over that join (no deduplication)
  core             evaljobs run core --dry-run --output json (multiclass metrics, coverage)
  core, label log  the same job on labels_log (no unique key, 2% corrected labels: ranked)
  full             core + latency histogram + drift of feature_x (continuous), feature_cat
                   (categorical) and predicted_label against version v1 over the same window
  drift feature_x  the full job's own timing of feature_x's drift (``--debug`` log line)
  pandas+sklearn   pandas.read_sql of the join + scikit-learn accuracy, macro P/R/F1 per version
  pandas+ks_2samp  pandas.read_sql of feature_x for v1 and v2 + scipy.stats.ks_2samp
  hourly           incremental windows: a 7d multiclass job with latency, scheduled hourly, run
                   with its results store (no --dry-run) at 23:00 after --refresh-summaries (the
                   first run: every part computed and stored), then at 00:00 (the second: one new
                   part, one part's late labels); the second's cost as a share of the first's

It prints a table with each time as a multiple of the floor, the targets of issue 9, and
writes ``.bench/bench-<rows>.json``; when the other size's file exists (1M vs 10M) it compares
peak RSS. Usage: ``python bench/run.py [--rows N] [--url URL] [--repeat 3] [--skip-pandas] [--only hourly]``
(``--only hourly``: just the hourly measurement's figures).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
#: BENCH_SCHEMA names another schema: two runs of different sizes at once (a 10M run while
#: someone runs the 1M bench on the same server) would otherwise drop each other's data.
SCHEMA = os.environ.get("BENCH_SCHEMA", "bench9")
DATA_VERSION = "bench9-data-1"  # bump when bench/data.sql changes: the kept data is regenerated
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
AT = "2026-03-01T00:00:00+00:00"
WINDOW = ("2025-12-01 00:00:00+00", "2026-03-01 00:00:00+00")  # the jobs' 90-day window at AT
#: A secondary measurement (the pandas baselines, the label-log job) whose first run takes
#: longer than this is run once: a median of three would not move a ratio that large, and three
#: 10M pandas runs alone would blow the 15 min budget. The floor, core and full jobs always run
#: --repeat times.
SLOW_BASELINE_SECONDS = 60.0

FLOOR = """
SELECT count(*) FROM predictions p JOIN labels l ON l.prediction_id = p.prediction_id AND l.labeled_at < :as_of
WHERE p.model_name = 'm' AND p.predicted_at >= :start AND p.predicted_at < :end
"""
GROUP_BY = """
SELECT p.model_version, l.label, p.predicted_label, count(*)
FROM predictions p LEFT JOIN labels l ON l.prediction_id = p.prediction_id AND l.labeled_at < :as_of
WHERE p.model_name = 'm' AND p.predicted_at >= :start AND p.predicted_at < :end
GROUP BY 1, 2, 3
"""
PANDAS_JOIN = """
SELECT p.model_version, p.predicted_label, l.label
FROM predictions p JOIN labels l ON l.prediction_id = p.prediction_id AND l.labeled_at < %(as_of)s
WHERE p.model_name = 'm' AND p.predicted_at >= %(start)s AND p.predicted_at < %(end)s
"""
PANDAS_FEATURE = """
SELECT model_version, feature_x FROM predictions
WHERE model_name = 'm' AND predicted_at >= %(start)s AND predicted_at < %(end)s AND model_version IN ('v1', 'v2')
"""

CONFIG = """
database: {url}
jobs:
  - {{name: core, model: m, task: multiclass, window: 90d, label_delay: 0s, schedule: "0 0 * * *",
     columns: {{latency_seconds: null}}}}
  - {{name: core-log, model: m, task: multiclass, window: 90d, label_delay: 0s, schedule: "0 0 * * *",
     tables: {{labels: labels_log}}, columns: {{latency_seconds: null}}}}
  - name: full
    model: m
    task: multiclass
    window: 90d
    label_delay: 0s
    schedule: "0 0 * * *"
    drift:
      reference: {{kind: version, version: v1}}
      features: [feature_x, {{name: feature_cat, kind: categorical}}]
      label: false
  - {{name: hourly, model: m, task: multiclass, window: 7d, label_delay: 0s, schedule: "0 * * * *"}}
"""


def schema_url(url: str) -> str:
    return str(sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={SCHEMA}"}))


def data_kept(url: str, rows: int) -> bool:
    """Whether ``bench9`` holds the data for this row count and generator."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(sa.text(f"SELECT rows, version FROM {SCHEMA}.bench_meta")).one()) == \
                (rows, DATA_VERSION)
    except sa.exc.ProgrammingError:
        return False
    finally:
        engine.dispose()


def ensure_data(url: str, rows: int) -> str:
    """Generate the data unless ``bench9`` already holds it for this row count and generator."""
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        try:
            kept = conn.execute(sa.text(f"SELECT rows, version FROM {SCHEMA}.bench_meta")).one()
        except sa.exc.ProgrammingError:
            kept = None
        if kept is not None and tuple(kept) == (rows, DATA_VERSION):
            return f"kept {rows:,} predictions in schema {SCHEMA} from an earlier run"
        started = time.perf_counter()
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
        conn.execute(sa.text(f"SET search_path = {SCHEMA}"))
        text = re.sub(r"--[^\n]*", "", (ROOT / "bench" / "data.sql").read_text())
        for statement in [s.strip() for s in text.split(";") if s.strip()]:
            conn.execute(sa.text(statement), {"rows": rows} if ":rows" in statement else {})
        conn.execute(sa.text("CREATE TABLE bench_meta (rows BIGINT, version TEXT)"))
        conn.execute(sa.text("INSERT INTO bench_meta VALUES (:rows, :version)"), {"rows": rows, "version": DATA_VERSION})
    admin.dispose()
    return f"generated {rows:,} predictions in SQL in {time.perf_counter() - started:.0f} s (schema {SCHEMA})"


# ---- measurements that are not the CLI, each run in its own process ---------------------------
def measure_in_process(kind: str, url: str) -> dict:
    """Run one non-CLI measurement here (called in a fresh process by :func:`spawn`)."""
    params = {"as_of": WINDOW[1], "start": WINDOW[0], "end": WINDOW[1]}
    if kind in ("floor", "group_by"):
        engine = sa.create_engine(schema_url(url))
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            started = time.perf_counter()
            result = conn.execute(sa.text(FLOOR if kind == "floor" else GROUP_BY), params).all()
            seconds = time.perf_counter() - started
        detail = f"{result[0][0]:,} joined rows" if kind == "floor" else f"{len(result)} groups"
        return {"query_seconds": seconds, "detail": detail}
    import pandas as pd
    import psycopg

    dsn = sa.engine.make_url(schema_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        if kind == "pandas_sklearn":
            from sklearn.metrics import accuracy_score, precision_recall_fscore_support

            frame = pd.read_sql(PANDAS_JOIN, conn, params=params)
            accuracies = {}
            for version, group in frame.groupby("model_version"):
                accuracies[version] = accuracy_score(group["label"], group["predicted_label"])
                precision_recall_fscore_support(group["label"], group["predicted_label"], average="macro",
                                                zero_division=0)
            return {"detail": f"{len(frame):,} rows into pandas", "accuracy": accuracies}
        from scipy.stats import ks_2samp

        frame = pd.read_sql(PANDAS_FEATURE, conn, params=params)
        result = ks_2samp(frame.loc[frame.model_version == "v1", "feature_x"],
                          frame.loc[frame.model_version == "v2", "feature_x"])
        return {"detail": f"{len(frame):,} values into pandas", "ks": float(result.statistic)}


def spawn(argv: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run ``argv`` as a fresh process: (wall seconds, peak RSS in MB of that process alone, result)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(argv, process.returncode, out.read().decode(), err.read().decode())
    if done.returncode not in (0, 3):
        raise SystemExit(f"bench: {' '.join(argv)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return wall, usage.ru_maxrss / 1024, done


DRIFT_LINE = re.compile(r"numeric drift summaries of 'feature_x' took ([0-9.]+)s")
RUN_LINE = re.compile(r"DEBUG evaljobs: run took ([0-9.]+)s")
#: The run's own log line of its window: the evaluation alone (queries and maths; no connect,
#: schema check, claim or result write).
WINDOW_LINE = re.compile(r"INFO evaljobs.runs: job \S+: window .*, \d+ version\(s\), ([0-9.]+)s")


def run_cli(job: str, config: Path, repeat: int, slow_once: bool = False) -> dict:
    evaljobs = str(Path(sys.executable).with_name("evaljobs"))
    runs = []
    for index in range(repeat):
        wall, rss, done = spawn([evaljobs, "--debug", "run", job, "--config", str(config), "--at", AT,
                                 "--dry-run", "--output", "json"])
        document = json.loads(done.stdout)
        drift_seconds = [float(s) for s in DRIFT_LINE.findall(done.stderr)]
        # The CLI's own timing of the run (queries and maths, after start-up and imports).
        evaluation = [float(s) for s in RUN_LINE.findall(done.stderr)]
        runs.append({"seconds": wall, "peak_rss_mb": rss, "drift_feature_x_seconds": sum(drift_seconds) or None,
                     "evaluation_seconds": evaluation[-1] if evaluation else None,
                     "versions": document["jobs"][0]["versions"] if "versions" in document["jobs"][0]
                     else document["jobs"]})
        if slow_once and index == 0 and wall > SLOW_BASELINE_SECONDS:
            break
    return summarise(runs)


HOURLY_AT = ("2026-02-28T23:00:00+00:00", AT)  # two consecutive fires of the hourly job


def run_hourly(config: Path, repeat: int) -> dict:
    """The hourly job's first run (parts refreshed) and second run, each a fresh process."""
    evaljobs = str(Path(sys.executable).with_name("evaljobs"))
    runs: dict[str, list[dict]] = {"first": [], "second": []}
    for _ in range(repeat):
        for name, at, extra in (("first", HOURLY_AT[0], ["--refresh-summaries"]), ("second", HOURLY_AT[1], [])):
            wall, rss, done = spawn([evaljobs, "--debug", "run", "hourly", "--config", str(config), "--at", at,
                                     "--textfile", str(config.with_name("hourly.prom")), *extra])
            evaluation = [float(s) for s in RUN_LINE.findall(done.stderr)]
            window_only = [float(s) for s in WINDOW_LINE.findall(done.stderr)]
            runs[name].append({"seconds": wall, "peak_rss_mb": rss,
                               "evaluation_seconds": evaluation[-1] if evaluation else None,
                               "window_seconds": window_only[-1] if window_only else None})
    first, second = summarise(runs["first"]), summarise(runs["second"])
    return {"seconds": second["seconds"], "peak_rss_mb": second["peak_rss_mb"], "all_seconds": second["all_seconds"],
            "runs": repeat, "first": first, "second": second,
            "share": second["seconds"] / first["seconds"],
            "evaluation_share": (second["evaluation_seconds"] / first["evaluation_seconds"]
                                 if second.get("evaluation_seconds") and first.get("evaluation_seconds") else None),
            "window_share": (second["window_seconds"] / first["window_seconds"]
                             if second.get("window_seconds") and first.get("window_seconds") else None)}


def run_measure(kind: str, url: str, repeat: int, slow_once: bool = False) -> dict:
    runs = []
    for index in range(repeat):
        wall, rss, done = spawn([sys.executable, __file__, "--measure", kind, "--url", url])
        result = json.loads(done.stdout)
        result |= {"seconds": result.pop("query_seconds", wall), "wall_seconds": wall, "peak_rss_mb": rss}
        runs.append(result)
        if slow_once and index == 0 and wall > SLOW_BASELINE_SECONDS:
            break
    return summarise(runs)


def summarise(runs: list[dict]) -> dict:
    out = dict(runs[-1])
    out["runs"] = len(runs)
    out["all_seconds"] = [r["seconds"] for r in runs]
    out["seconds"] = statistics.median(r["seconds"] for r in runs)
    out["peak_rss_mb"] = statistics.median(r["peak_rss_mb"] for r in runs)
    for key in ("drift_feature_x_seconds", "evaluation_seconds", "window_seconds"):
        found = [r[key] for r in runs if r.get(key)]
        if found:
            out[key] = statistics.median(found)
    return out


def accuracies(cli: dict) -> dict[str, float]:
    return {v["model_version"]: v["accuracy"] for v in cli["versions"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", default=os.environ.get("BENCH_URL", DEFAULT_URL))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-pandas", action="store_true", help="leave out the two pandas baselines")
    parser.add_argument("--only", choices=["hourly"],
                        help="run only this measurement and print its figures (no floor, no table)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_in_process(args.measure, args.url)))
        return 0

    started = time.perf_counter()
    if args.only:
        # A single measurement never (re)generates the data: bench9 is shared with other runs.
        if not data_kept(args.url, args.rows):
            raise SystemExit(f"bench: schema {SCHEMA} does not hold {args.rows:,} predictions of {DATA_VERSION}; "
                             "run the whole bench once to generate them")
    else:
        print(ensure_data(args.url, args.rows), flush=True)
    out_dir = ROOT / ".bench"
    out_dir.mkdir(exist_ok=True)
    config = out_dir / "bench9.yaml"
    config.write_text(CONFIG.format(url=schema_url(args.url)))

    if args.only == "hourly":
        hourly = run_hourly(config, args.repeat)
        for name in ("first", "second"):
            run = hourly[name]
            print(f"hourly 7d job, {name} run: {run['seconds']:.2f} s wall (runs: "
                  f"{', '.join(f'{s:.2f}' for s in run['all_seconds'])}), the run itself "
                  f"{run.get('evaluation_seconds') or float('nan'):.2f} s after start-up, of which the window's "
                  f"evaluation {run.get('window_seconds') or float('nan'):.2f} s, peak RSS {run['peak_rss_mb']:.0f} MB")
        print(f"second run as a share of the first: {hourly['share']:.3f} of wall time, "
              f"{hourly['evaluation_share'] or float('nan'):.3f} after start-up (target <= 0.1), "
              f"{hourly['window_share'] or float('nan'):.3f} of the window's evaluation alone")
        return 0

    results: dict[str, dict] = {}
    steps: list[tuple[str, callable]] = [
        ("floor", lambda: run_measure("floor", args.url, args.repeat)),
        ("group_by", lambda: run_measure("group_by", args.url, args.repeat)),
        ("core", lambda: run_cli("core", config, args.repeat)),
        ("core_label_log", lambda: run_cli("core-log", config, args.repeat, slow_once=True)),
        ("full", lambda: run_cli("full", config, args.repeat)),
        ("hourly", lambda: run_hourly(config, args.repeat)),
    ]
    if not args.skip_pandas:
        steps += [("pandas_sklearn", lambda: run_measure("pandas_sklearn", args.url, args.repeat, slow_once=True)),
                  ("pandas_ks_2samp", lambda: run_measure("pandas_ks", args.url, args.repeat, slow_once=True))]
    for name, step in steps:
        results[name] = step()
        print(f"  {name}: {results[name]['seconds']:.2f} s (runs: "
              f"{', '.join(f'{s:.2f}' for s in results[name]['all_seconds'])})", flush=True)

    floor = results["floor"]["seconds"]
    drift_x = results["full"].get("drift_feature_x_seconds")
    rows = [
        ("floor: count(*) of the join", results["floor"], "query time only"),
        ("one GROUP BY over the join", results["group_by"], "query time only, no deduplication"),
        ("evaljobs core", results["core"], "CLI process, labels with a primary key"),
        ("evaljobs core, label log", results["core_label_log"], "labels_log: no unique key, latest label ranked"),
        ("evaljobs full", results["full"], "core + latency + drift of 3 values vs v1"),
    ]
    if drift_x is not None:
        rows.append(("  of which drift of feature_x", {"seconds": drift_x, "runs": results["full"]["runs"]},
                     "the full job's own timing of that value"))
    hourly = results["hourly"]
    rows.append(("hourly 7d job, first run", hourly["first"], "results store, parts refreshed: all computed"))
    rows.append(("hourly 7d job, second run", hourly["second"],
                 f"one hour later: {hourly['share']:.3f} of the first"
                 + (f" ({hourly['evaluation_share']:.3f} after start-up)" if hourly["evaluation_share"] else "")))
    for name, label in (("pandas_sklearn", "pandas + scikit-learn"), ("pandas_ks_2samp", "pandas + ks_2samp")):
        if name in results:
            rows.append((label, results[name], results[name]["detail"]))

    print(f"\n{args.rows:,} predictions, PostgreSQL at {sa.engine.make_url(args.url).render_as_string()}, "
          f"median of {args.repeat} fresh processes each\n")
    print(f"| measurement | seconds | x floor | peak RSS | note |\n|---|---|---|---|---|")
    for label, result, note in rows:
        rss = f"{result['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in result and not label.startswith("floor") \
            and "GROUP BY" not in label else ""
        runs = "" if result.get("runs", args.repeat) == args.repeat else " (1 run)"
        if result.get("evaluation_seconds"):
            note += f"; the run itself {result['evaluation_seconds']:.2f} s after start-up"
        print(f"| {label} | {result['seconds']:.2f}{runs} | {result['seconds'] / floor:.2f} | {rss} | {note} |")

    targets = []
    core, full = results["core"], results["full"]
    targets.append(("core <= 1.5x floor", core["seconds"] / floor, core["seconds"] / floor <= 1.5))
    targets.append(("full <= 3x floor", full["seconds"] / floor, full["seconds"] / floor <= 3))
    if "pandas_sklearn" in results:
        speedup = results["pandas_sklearn"]["seconds"] / core["seconds"]
        targets.append(("core >= 15x faster than pandas + scikit-learn", speedup, speedup >= 15))
    if "pandas_ks_2samp" in results and drift_x:
        speedup = results["pandas_ks_2samp"]["seconds"] / drift_x
        targets.append(("drift of feature_x >= 5x faster than pandas + ks_2samp", speedup, speedup >= 5))
    share = hourly["evaluation_share"] or hourly["share"]
    targets.append(("second hourly run <= 1/10 of the first (after start-up)", share, share <= 0.1))
    peak = max(core["peak_rss_mb"], full["peak_rss_mb"], results["core_label_log"]["peak_rss_mb"])
    targets.append(("evaljobs peak RSS <= 100 MB", peak, peak <= 100))
    other_rows = 10_000_000 if args.rows != 10_000_000 else 1_000_000
    other = out_dir / f"bench-{other_rows}.json"
    if other.is_file():
        other_peak = json.loads(other.read_text())["evaljobs_peak_rss_mb"]
        ratio = peak / other_peak if args.rows > other_rows else other_peak / peak
        targets.append((f"peak RSS at the larger size within 10% of the smaller ({other_rows:,} rows: "
                        f"{other_peak:.0f} MB)", ratio, ratio <= 1.10))
    print("\n| target | value | met |\n|---|---|---|")
    for label, value, met in targets:
        print(f"| {label} | {value:.2f} | {'yes' if met else 'NO'} |")

    # Same answers: evaljobs' accuracy per version equals the pandas script's.
    if "pandas_sklearn" in results:
        ours, theirs = accuracies(core), results["pandas_sklearn"]["accuracy"]
        same = all(abs(ours[v] - theirs[v]) < 1e-12 for v in theirs) and set(ours) == set(theirs)
        print(f"\naccuracy per version, evaljobs vs scikit-learn: {'equal' if same else 'DIFFERENT'} "
              f"({', '.join(f'{v} {a:.6f}' for v, a in sorted(ours.items()))})")
    document = {"rows": args.rows, "repeat": args.repeat, "results": {k: {kk: vv for kk, vv in v.items()
                if kk != "versions"} for k, v in results.items()},
                "targets": [{"target": t, "value": v, "met": m} for t, v, m in targets],
                "evaljobs_peak_rss_mb": peak, "bench_seconds": time.perf_counter() - started}
    path = out_dir / f"bench-{args.rows}.json"
    path.write_text(json.dumps(document, indent=2))
    print(f"\nwritten {path.relative_to(ROOT)}; the whole bench took {document['bench_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
