"""evaljobs backfill: every past window stored, nothing pushed, an OpenMetrics file promtool and Prometheus accept."""

from __future__ import annotations

import io
import json
import subprocess
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from evaljobs import cli
from dev import localservices
from evaljobs import demodata
from evaljobs.ops.backfill import Progress
from evaljobs.ops.store import ResultsStore
from evaljobs.db.engine import connect
from evaljobs.windows import fire_times

from tests.conftest import DEMO_NOW, samples

UTC = timezone.utc
FRAUD = """  - name: fraud-6h
    model: fraud
    task: binary
    positive_label: 1
    window: 6h
    label_delay: 1d
    schedule: "0 */6 * * *"
"""


def write_config(tmp_path: Path, database: str, gateway: str) -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text(f"database: '{database}'\npushgateway: {gateway}\njobs:\n{FRAUD}")
    return path


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def stored(url: str, job: str = "fraud-6h") -> list[dict]:
    engine = connect(url)
    try:
        return ResultsStore(engine).rows(job)
    finally:
        engine.dispose()


@pytest.fixture
def demo_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def test_backfill_stores_every_window_and_never_touches_the_pushgateway(db_url, pushgateway, tmp_path, capsys,
                                                                        demo_now) -> None:
    demodata.build(db_url, now=demo_now, days=3)
    config = write_config(tmp_path, db_url, pushgateway.url)
    assert cli.main(["run", "fraud-6h", "--config", str(config)]) == 0  # the live value
    live = {s.labels["model_version"]: s.value for s in samples(f"{pushgateway.url}/metrics", "model_accuracy_ratio")}
    capsys.readouterr()

    # Up to, not including, the live run's window (the latest fire, less than 6 hours ago).
    start, end = demo_now - timedelta(days=2), demo_now - timedelta(hours=6)
    target = tmp_path / "history.om"
    code = cli.main(["backfill", "fraud-6h", "--config", str(config), "--from", iso(start), "--to", iso(end),
                     "--openmetrics", str(target)])
    out, err = capsys.readouterr()
    fires = list(fire_times("0 */6 * * *", start, end))
    assert code == 0, err
    assert f"backfilled job fraud-6h: {len(fires)} window(s)" in out and "nothing pushed" in out
    # Not a terminal here: one plain progress line per window.
    assert err.count("backfill fraud-6h: ") == len(fires) and f"{len(fires)}/{len(fires)} evaluated" in err

    rows = [r for r in stored(db_url) if r["origin"] == "backfill"]
    job_rows = [r for r in rows if r["row_kind"] == "job"]
    assert sorted(r["evaluated_at"] for r in job_rows) == fires
    assert {r["push_status"] for r in rows} == {"none"}
    assert all(abs((r["labels_as_of"] - demo_now).total_seconds()) < 120 for r in rows)  # labels as of now
    assert all(r["status"] == "ok" for r in job_rows)
    # The Pushgateway still holds the live run's values.
    after = {s.labels["model_version"]: s.value for s in samples(f"{pushgateway.url}/metrics", "model_accuracy_ratio")}
    assert after == live

    # Re-running the backfill replaces the rows; nothing is appended.
    assert cli.main(["backfill", "fraud-6h", "--config", str(config), "--from", iso(start), "--to", iso(end)]) == 0
    again = [r for r in stored(db_url) if r["origin"] == "backfill"]
    assert len(again) == len(rows) and {r["evaluations"] for r in again if r["row_kind"] == "job"} == {2}
    [live] = [r for r in stored(db_url) if r["origin"] == "run" and r["row_kind"] == "job"]
    assert live["push_status"] == "pushed" and live["evaluations"] == 1


def test_the_openmetrics_file_is_what_promtool_needs(sqlite_url, tmp_path, capsys, demo_now) -> None:
    demodata.build(sqlite_url, now=demo_now, days=3)
    config = write_config(tmp_path, sqlite_url, "http://127.0.0.1:9")
    start, end = demo_now - timedelta(days=2), demo_now - timedelta(hours=4)
    target = tmp_path / "history.om"
    assert cli.main(["backfill", "fraud-6h", "--config", str(config), "--from", iso(start), "--to", iso(end),
                     "--openmetrics", str(target)]) == 0
    text = target.read_text()
    assert text.endswith("# EOF\n")

    # Families are not interleaved: each name's lines form one block.
    # (A histogram's samples are _bucket, _count and _sum of its family's block.)
    headers, current = [], None
    for line in text.splitlines()[:-1]:
        if line.startswith("# TYPE "):
            current = line.split()[2]
            headers.append(current)
        elif not line.startswith("#"):
            assert line.split("{")[0].split()[0].startswith(current), (current, line)
    assert len(headers) == len(set(headers)) > 20

    # The strict OpenMetrics parser of prometheus_client rejects a histogram with points at
    # several timestamps ("+Inf bucket missing"), though promtool reads it (see the round trip
    # below); the other families are parsed strictly.
    families = list(text_string_to_metric_families(without_histograms(text)))
    by_series: dict[tuple, list[float]] = {}
    for family in families:
        for sample in family.samples:
            assert sample.timestamp is not None
            assert {"job", "model", "model_version"} <= set(sample.labels) or family.name.startswith("evaljobs_")
            assert sample.labels["job"] == "fraud-6h" and sample.labels["model"] == "fraud"
            key = (sample.name, tuple(sorted(sample.labels.items())))
            by_series.setdefault(key, []).append(float(sample.timestamp))
    for stamps in by_series.values():
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)

    # Every value is the stored one, at its window's evaluation time.
    accuracy = {(s.labels["model_version"], float(s.timestamp)): s.value
                for f in families if f.name == "model_accuracy_ratio" for s in f.samples}
    want = {(r["model_version"], r["evaluated_at"].timestamp()): r["accuracy"]
            for r in stored(sqlite_url) if r["row_kind"] == "version" and r["accuracy"] is not None}
    assert accuracy == want and len(want) >= 8


def without_histograms(text: str) -> str:
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("# HELP "):
            skipping = False
        if line.startswith("# TYPE ") and line.split()[3] == "histogram":
            skipping = True
            if kept and kept[-1].startswith("# HELP "):
                kept.pop()
        if not skipping:
            kept.append(line)
    return "".join(kept)


@pytest.mark.parametrize("args, message", [
    (["--from", "2026-01-02T00:00:00Z", "--to", "2026-01-01T00:00:00Z"], "is not before --to"),
    (["--from", "2026-01-01T00:00:00Z", "--to", "2999-01-01T00:00:00Z"], "is in the future"),
    (["--from", "2026-01-01T00:10:00Z", "--to", "2026-01-01T00:20:00Z"], "does not fire between"),
])
def test_bad_ranges_are_one_line_usage_errors(sqlite_url, tmp_path, capsys, args, message) -> None:
    config = write_config(tmp_path, sqlite_url, "http://127.0.0.1:9")
    assert cli.main(["backfill", "fraud-6h", "--config", str(config), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("evaljobs: error: ")


def prometheus_query(url: str, query: str, at: float) -> list[dict]:
    params = urllib.parse.urlencode({"query": query, "time": f"{at:.3f}"})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.mark.service
def test_backfilled_history_reads_back_from_a_real_prometheus(sqlite_url, tmp_path, capsys, demo_now) -> None:
    """backfill -> promtool tsdb create-blocks-from openmetrics -> Prometheus -> /api/v1/query at past times."""
    demodata.build(sqlite_url, now=demo_now, days=4)
    config = write_config(tmp_path, sqlite_url, "http://127.0.0.1:9")
    start, end = demo_now - timedelta(days=3), demo_now - timedelta(hours=4)  # the last hours stay live
    history = tmp_path / "history.om"
    assert cli.main(["backfill", "fraud-6h", "--config", str(config), "--from", iso(start), "--to", iso(end),
                     "--openmetrics", str(history)]) == 0
    promtool = localservices.find_binary(("promtool",))
    assert promtool, "promtool is missing (Debian package prometheus)"
    data = tmp_path / "data"
    created = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(history), str(data)],
                             capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    prometheus_yml = tmp_path / "prometheus.yml"
    prometheus_yml.write_text("global:\n  scrape_interval: 1m\n")
    with localservices.start_prometheus(prometheus_yml, data, log_path=tmp_path / "prometheus.log",
                                        extra_args=["--storage.tsdb.retention.time=3650d"]) as prometheus:
        versions = [r for r in stored(sqlite_url) if r["row_kind"] == "version" and r["accuracy"] is not None]
        assert len(versions) >= 12
        for row in versions:
            selector = f'{{job="fraud-6h",model="fraud",model_version="{row["model_version"]}"}}'
            at = row["evaluated_at"].timestamp()
            for metric, column in (("model_accuracy_ratio", "accuracy"), ("model_macro_f1_ratio", "macro_f1"),
                                   ("model_roc_auc_ratio", "roc_auc"), ("model_labeled_predictions", "labeled_predictions")):
                found = prometheus_query(prometheus.url, metric + selector, at)
                if row[column] is None:  # e.g. no ROC AUC for a window without positives
                    assert found == []
                    continue
                [series] = found
                assert float(series["value"][1]) == row[column], (metric, row["model_version"], at)
        # Between windows the points are sparse: last_over_time reads the window in force.
        row = versions[0]
        selector = f'{{job="fraud-6h",model_version="{row["model_version"]}"}}'
        [series] = prometheus_query(prometheus.url, f"last_over_time(model_accuracy_ratio{selector}[6h])",
                                    row["evaluated_at"].timestamp() + 3 * 3600)
        assert float(series["value"][1]) == row["accuracy"]
        windows = len({r["evaluated_at"] for r in stored(sqlite_url) if r["row_kind"] == "job"})
        [count] = prometheus_query(prometheus.url, 'count_over_time(evaljobs_evaluated_versions{job="fraud-6h"}[4d])',
                                   end.timestamp())
        assert int(count["value"][1]) == windows


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise() -> None:
    terminal, log = Terminal(), io.StringIO()
    for stream in (terminal, log):
        progress = Progress(4, "backfill j", stream=stream, width=8)
        for done in range(1, 5):
            progress.update(done, f"window {done} ok")
        progress.close()
    assert terminal.getvalue().count("\r") == 4 and "\n" not in terminal.getvalue()[:-1]
    assert "\rbackfill j [####....] 2/4 eta" in terminal.getvalue()
    assert "\rbackfill j [########] 4/4 eta 0s" in terminal.getvalue()
    assert log.getvalue().splitlines() == [f"backfill j: {n}/4 window {n} ok" for n in range(1, 5)]


def backfilled(url: str, tmp_path: Path) -> list[dict]:
    """Backfill two windows of fraud-6h from the demo data at ``url`` (the session's, see conftest's
    demo_data), the results store in SQLite."""
    results_url = f"sqlite:///{tmp_path / 'results.db'}"
    config = tmp_path / "schedules.yaml"
    config.write_text(f"database: '{url}'\nresults: {{database: '{results_url}'}}\njobs:\n{FRAUD}")
    start, end = DEMO_NOW - timedelta(hours=36), DEMO_NOW - timedelta(hours=24)
    assert cli.main(["backfill", "fraud-6h", "--config", str(config), "--from", iso(start), "--to", iso(end)]) == 0
    rows = [r for r in stored(results_url) if r["origin"] == "backfill"]
    assert len([r for r in rows if r["row_kind"] == "job"]) == 2
    return sorted(rows, key=lambda r: (r["window_start"], r["row_kind"], r["model_version"]))


@pytest.mark.parametrize("engine", ["duckdb", "postgresql", "spark"])
def test_backfill_from_every_engine_stores_the_sqlite_numbers(engine, demo_data, tmp_path, capsys) -> None:
    """The data on DuckDB, PostgreSQL or Spark, the results store in SQLite (as Spark needs)."""
    (tmp_path / "sqlite").mkdir()
    (tmp_path / engine).mkdir()
    want = backfilled(demo_data("sqlite"), tmp_path / "sqlite")
    got = backfilled(demo_data(engine), tmp_path / engine)
    capsys.readouterr()
    assert len(got) == len(want) > 2
    for a, b in zip(want, got):
        assert (a["window_start"], a["row_kind"], a["model_version"], a["status"], a["window_predictions"],
                a["labeled_predictions"]) == (b["window_start"], b["row_kind"], b["model_version"], b["status"],
                                              b["window_predictions"], b["labeled_predictions"])
        for metric in ("accuracy", "macro_recall", "macro_f1", "roc_auc"):
            if a[metric] is None:  # the job rows
                assert b[metric] is None and a["row_kind"] == "job"
            else:
                assert b[metric] == pytest.approx(a[metric], rel=1e-9, abs=1e-12), (metric, a["model_version"])
