"""Benchmark of the core pipeline on PostgreSQL, as ratios against a floor measured in the same run.

Generates N predictions in SQL (3 versions x 5 classes, 80% labelled, a score), then times:
  floor      SELECT count(*) of the predictions-labels join over the window (no Python work)
  evaljobs   evaluate_job for a multiclass job and for a binary job with ROC AUC, log loss, Brier
  naive      pandas.read_sql of the joined rows + scikit-learn (what a hand-written script does)
and prints each as a multiple of the floor, with the peak RSS of the process that did the work.
Each measurement runs in its own subprocess so peak memory is its own.

    python bench/core.py [--rows 1000000] [--skip-naive] [--url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone

import sqlalchemy as sa

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
AT = datetime(2026, 2, 1, tzinfo=timezone.utc)

GENERATE = """
CREATE TABLE predictions AS
SELECT 'p' || g AS prediction_id,
       CASE WHEN g % 2 = 0 THEN 'bin' ELSE 'multi' END AS model_name,
       'v' || (g % 3) AS model_version,
       TIMESTAMPTZ '2026-01-01 00:00:00+00' + (g % 2592000) * INTERVAL '1 second' AS predicted_at,
       CASE WHEN g % 2 = 0 THEN ((g * 7919) % 2)::text ELSE 'c' || ((g * 7919) % 5) END AS predicted_label,
       (((g * 104729) % 1000003) / 1000003.0)::double precision AS score,
       (0.01 + ((g * 31) % 1000) / 1000.0)::double precision AS latency_seconds
FROM generate_series(1::bigint, :rows) AS g;
CREATE TABLE labels AS
SELECT prediction_id,
       CASE WHEN model_name = 'bin' THEN (CASE WHEN random() < 0.5 + (score - 0.5) * 0.6 THEN '1' ELSE '0' END)
            ELSE (CASE WHEN random() < 0.7 THEN predicted_label ELSE 'c' || floor(random() * 5)::int END) END AS label,
       predicted_at + INTERVAL '1 hour' AS labeled_at
FROM predictions WHERE random() < 0.8;
CREATE INDEX ON predictions (model_name, predicted_at);
CREATE INDEX ON labels (prediction_id, labeled_at);
ANALYZE predictions;
ANALYZE labels;
"""

FLOOR = """
SELECT count(*) FROM predictions p LEFT JOIN labels l ON l.prediction_id = p.prediction_id AND l.labeled_at < :asof
WHERE p.model_name = :model AND p.predicted_at >= :start AND p.predicted_at < :end
"""


def measure(kind: str, url: str) -> dict:
    """Run one measurement in this process; returns seconds and peak RSS."""
    from evaljobs.config import Job
    from evaljobs.ops.runner import evaluate_job
    from evaljobs.db.engine import connect
    from evaljobs.db.source import JobSource
    from evaljobs.windows import plan_window

    job = Job.model_validate({"name": kind, "model": "multi", "task": "multiclass", "window": "30d",
                              "label_delay": "0s", "schedule": "0 0 * * *"})
    if kind in ("evaljobs-binary", "floor-binary"):
        job = Job.model_validate({"name": kind, "model": "bin", "task": "binary", "positive_label": "1",
                                  "window": "30d", "label_delay": "0s", "schedule": "0 0 * * *"})
    window = plan_window(AT, job.window, job.label_delay)
    engine = connect(url)
    started = time.perf_counter()
    detail = ""
    if kind.startswith("floor"):
        with engine.connect() as conn:
            n = conn.execute(sa.text(FLOOR), {"asof": window.labels_as_of, "model": job.model,
                                              "start": window.start, "end": window.end}).scalar_one()
        detail = f"{n:,} joined rows"
    elif kind.startswith("evaljobs"):
        result = evaluate_job(JobSource(engine, job), window)
        v = result.versions[0]
        detail = f"{len(result.versions)} versions, v0 accuracy {v.metrics.accuracy:.4f}"
        if v.scores:
            detail += f", AUC {v.scores.roc_auc:.4f}"
    elif kind == "naive":
        import pandas as pd
        from sklearn.metrics import accuracy_score, precision_recall_fscore_support

        frame = pd.read_sql(sa.text(
            "SELECT p.model_version, p.predicted_label, l.label FROM predictions p "
            "JOIN labels l ON l.prediction_id = p.prediction_id "
            "WHERE p.model_name = :model AND p.predicted_at >= :start AND p.predicted_at < :end"),
            engine, params={"model": job.model, "start": window.start, "end": window.end})
        for _, group in frame.groupby("model_version"):
            accuracy_score(group["label"], group["predicted_label"])
            precision_recall_fscore_support(group["label"], group["predicted_label"], average="macro", zero_division=0)
        detail = f"{len(frame):,} rows into pandas"
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"kind": kind, "seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "detail": detail}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.url)))
        return 0

    schema = f"evaljobs_bench_{uuid.uuid4().hex[:8]}"
    url = str(sa.engine.make_url(args.url).update_query_dict({"options": f"-csearch_path={schema}"}))
    admin = sa.create_engine(args.url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        engine = sa.create_engine(url)
        started = time.perf_counter()
        with engine.begin() as conn:
            for statement in [s for s in GENERATE.split(";") if s.strip()]:
                conn.execute(sa.text(statement), {"rows": args.rows})
        engine.dispose()
        print(f"generated {args.rows:,} predictions in SQL in {time.perf_counter() - started:.1f}s "
              f"(half binary, half 5-class; 3 versions; ~80% labelled)")
        kinds = ["floor", "evaljobs", "floor-binary", "evaljobs-binary"] + ([] if args.skip_naive else ["naive"])
        results = {}
        for kind in kinds:
            done = subprocess.run([sys.executable, __file__, "--measure", kind, "--url", url],
                                  capture_output=True, text=True, check=True)
            results[kind] = json.loads(done.stdout)
        print(f"\n{'measurement':<18}{'seconds':>9}{'x floor':>9}{'peak RSS':>11}  detail")
        for kind, r in results.items():
            floor = results["floor-binary" if "binary" in kind else "floor"]["seconds"]
            print(f"{kind:<18}{r['seconds']:>9.2f}{r['seconds'] / floor:>9.2f}{r['peak_rss_mb']:>9.0f}MB  {r['detail']}")
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
