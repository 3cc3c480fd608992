"""evaljobs report: one self-contained HTML page drawn from the results store alone.

The charts' numbers are checked against the store's own columns and the raw rows of the
database, the page against "no network" (nothing but inline scripts), and the command's bad
input against one-line errors. The page in a real browser: test_report_browser.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from evaljobs import cli, demodata
from evaljobs.config import load_config
from evaljobs.db.engine import connect
from evaljobs.ops.store import ResultsStore
from evaljobs.quality.latency import histogram_quantile
from evaljobs.sinks import html

from tests.sinks.conftest import REPORT_NOW, REPOSITORY, demo_config, iso

UTC = timezone.utc


def job_report(config: Path, url: str, since: datetime, until: datetime) -> html.JobReport:
    job = load_config(config).job("fraud-daily")
    engine = connect(url)
    try:
        rows = ResultsStore(engine).report_rows(job.name, since, until)
    finally:
        engine.dispose()
    return html.JobReport.from_rows(job.name, job.model, since, until, job.gate, rows)


@pytest.fixture(scope="module")
def report(fraud_store) -> html.JobReport:
    config, url = fraud_store
    return job_report(config, url, REPORT_NOW - timedelta(days=30), REPORT_NOW)


def stored_columns(url: str) -> dict[str, dict[datetime, dict]]:
    """The store's own columns (not the JSON the report reads): version -> window end -> row."""
    engine = connect(url)
    try:
        rows = ResultsStore(engine).rows("fraud-daily")
    finally:
        engine.dispose()
    out: dict[str, dict[datetime, dict]] = {}
    for row in rows:
        if row["row_kind"] == "version":
            out.setdefault(row["model_version"], {})[row["window_end"]] = row
    return out


def traces(figure, name: str | None = None, xaxis: str | None = None) -> list:
    return [t for t in figure.data if (name is None or t.name == name) and (xaxis is None or t.xaxis == xaxis)]


# ---- the command -------------------------------------------------------------------------------
def test_the_page_is_self_contained_and_has_every_chart(fraud_report: Path) -> None:
    document = fraud_report.read_text()
    _go, _subplots, offline = html.plotly_modules()
    assert document.count(offline.get_plotlyjs()) == 1, "plotly.js is inlined exactly once"
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", document), "nothing is loaded from elsewhere"
    titles = [re.sub(r"[0-9,]+ rows", "N rows", t)
              for t in re.findall(r'<div class="chart" data-title="([^"]*)"', document)]
    expected = [
        "Accuracy, macro recall and macro F1 per version",
        "Label coverage",
        "Inference latency",
        "Drift against version v2 over the same window, N rows",
        "Latest confusion matrix per version",
        "Drift of the latest window, per feature",
        "Score metrics over time",
        # the estimate (issue 13) and its parts, drawn from the record fields alone
        "Estimate over time",
        "Estimate confusion over time",
        "Estimate reference over time",
        "Estimate calibration check over time",
    ]
    assert titles[:7] == expected[:7] and set(expected) <= set(titles)
    # Record sections other engineers add (e.g. label delay) are drawn as generic charts too.
    assert all(t.endswith("over time") for t in titles if t not in expected)


def test_the_command_prints_what_the_page_shows(fraud_store, tmp_path, capsys) -> None:
    config, _url = fraud_store
    target = tmp_path / "report.html"
    assert cli.main(["report", "fraud-daily", "--config", str(config), "--to", iso(REPORT_NOW),
                     "--html", str(target)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("job fraud-daily: 14 window(s) ending in (2026-02-13T07:00:00Z, 2026-03-15T07:00:00Z]")
    canary = next(line for line in lines if line.strip().startswith("v3-canary:"))
    assert "drift in amount" in canary and "country" not in canary
    assert f"wrote the HTML report to {target}" in err
    assert target.stat().st_size > 1_000_000  # the library is in the file
    assert not list(target.parent.glob(".*.tmp")), "written atomically: no temporary file is left"


def test_the_quality_chart_draws_the_stored_numbers_and_thresholds(report, fraud_store) -> None:
    columns = stored_columns(fraud_store[1])
    figure = html.quality_figure(report)
    panels = {"accuracy": "x", "macro recall": "x2", "macro F1": "x3", "recall of class 1": "x4"}
    assert [a.text for a in figure.layout.annotations][:4] == list(panels)
    for version, rows in columns.items():
        for title, axis, column in (("accuracy", "x", "accuracy"), ("macro recall", "x2", "macro_recall"),
                                    ("macro F1", "x3", "macro_f1")):
            (trace,) = traces(figure, version, axis)
            drawn = dict(zip(trace.x, trace.y))
            assert drawn == {end: row[column] for end, row in rows.items()}, (version, title)
    lines = {(shape.yref, shape.y0) for shape in figure.layout.shapes}
    assert ("y", 0.9) in lines and ("y", 0.85) in lines  # the alert and min_accuracy
    assert ("y4", 0.5) in lines  # min_recall of class 1
    # The canary is the version that falls below the alert: what the page is for.
    (canary,) = traces(figure, "v3-canary", "x")
    assert min(canary.y) < 0.9 < min(traces(figure, "v2", "x")[0].y)


def test_the_accuracy_alert_line_is_the_alert_rule_threshold() -> None:
    rules = yaml.safe_load((REPOSITORY / "prometheus" / "evaljobs.rules.yml").read_text())
    alert = next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "ModelAccuracyLow")
    assert re.search(r"model_accuracy_ratio < ([0-9.]+)", alert["expr"]).group(1) == str(html.ACCURACY_ALERT_THRESHOLD)


def test_coverage_and_confusion_are_the_stored_ones(report, fraud_store) -> None:
    columns = stored_columns(fraud_store[1])
    coverage = html.coverage_figure(report)
    for version, rows in columns.items():
        (trace,) = traces(coverage, version)
        assert dict(zip(trace.x, trace.y)) == {
            end: row["labeled_predictions"] / row["window_predictions"] for end, row in rows.items()}
    confusion = html.confusion_figure(report)
    assert [t.type for t in confusion.data] == ["heatmap"] * 3
    canary = confusion.data[2]
    last = columns["v3-canary"][max(columns["v3-canary"])]
    assert sum(map(sum, canary.z)) == last["labeled_predictions"]
    assert sum(canary.z[i][i] for i in range(len(canary.z))) == round(last["accuracy"] * last["labeled_predictions"])


def test_the_drift_heatmap_marks_the_canarys_amount_and_not_its_country(report) -> None:
    figure = html.drift_heatmap(report)
    by_version = {t.hovertemplate.split(" ")[0]: t for t in figure.data}
    assert list(by_version) == ["v1", "v3-canary"]  # v2 is the reference: compared with nothing
    canary = by_version["v3-canary"]
    rows = dict(zip(canary.y, canary.z))
    assert all(z > 0 for z in rows["amount"]), "the canary's shifted amounts drift in every window"
    assert all(z < 0 for z in rows["country"]), "its countries do not"
    assert all(cell.endswith("*") for cell in dict(zip(canary.y, canary.text))["amount"]), "* marks detected drift"
    assert re.fullmatch(r"version v2 over the same window, [0-9,]+ rows", html.drift_reference(report))


def test_the_drift_table_shows_the_latest_window_with_its_distributions(report) -> None:
    figure, body = html.drift_details(report)
    assert body.count("<tr>") == 1 + 5  # header + the canary's five values (v1 retired earlier)
    assert re.search(r"v3-canary</td>.*?amount</td>.*?DRIFT", body)
    amount = [t for t in figure.data if "amount" in t.hovertemplate]
    reference, current = amount
    point = report.latest("v3-canary", "drift")
    buckets = next(f for f in point.record["drift"]["features"] if f["feature"] == "amount")["buckets"]
    assert list(reference.customdata) == [b["reference"] for b in buckets]
    assert list(current.customdata) == [b["current"] for b in buckets]
    assert sum(current.y) == pytest.approx(1.0)
    # Shifted upwards: the window's share of the top reference bin is far above the reference's 10%.
    assert current.y[-1] > 2 * reference.y[-1]


def test_p95_lies_in_the_bucket_of_the_raw_p95(report, fraud_store) -> None:
    """The stated bound of the p95 estimate, checked against the raw latencies of the window."""
    _config, url = fraud_store
    point = report.versions["v3-canary"][-1]
    estimate = html.p95_seconds(point.record)
    engine = connect(url)
    with engine.connect() as conn:
        latencies = [r[0] for r in conn.execute(sa.text(
            "SELECT latency_seconds FROM predictions WHERE model_name = 'fraud' AND model_version = 'v3-canary' "
            "AND predicted_at >= :start AND predicted_at < :end"),
            {"start": point.window_start.strftime("%Y-%m-%d %H:%M:%S.%f"),
             "end": point.window_end.strftime("%Y-%m-%d %H:%M:%S.%f")})]
    engine.dispose()
    assert len(latencies) == point.record["latency"]["count"]
    exact = float(np.quantile(latencies, 0.95, method="inverted_cdf"))
    bounds = [0.0] + [float(b["le"]) for b in point.record["latency"]["buckets"] if b["le"] != "+Inf"]
    bucket = next(i for i in range(1, len(bounds)) if exact <= bounds[i])
    assert bounds[bucket - 1] <= estimate <= bounds[bucket]


def test_the_range_bounds_what_is_read(fraud_store) -> None:
    config, url = fraud_store
    until = REPORT_NOW - timedelta(days=3, hours=18)
    since = until - timedelta(days=3)
    narrow = job_report(config, url, since, until)
    ends = [w["window_end"] for w in narrow.windows]
    assert len(ends) == 3 and all(since < end <= until for end in ends)
    assert all(since < p.window_end <= until for points in narrow.versions.values() for p in points)


# ---- bad input ----------------------------------------------------------------------------------
def test_an_empty_range_is_one_line(fraud_store, capsys) -> None:
    config, _url = fraud_store
    code = cli.main(["report", "fraud-daily", "--config", str(config), "--from", "2020-01-01T00:00:00Z",
                     "--to", "2020-02-01T00:00:00Z", "--html", "never.html"])
    err = capsys.readouterr().err
    assert code == 1 and not Path("never.html").exists()
    assert err.count("\n") == 1 and "no window ending in (2020-01-01T00:00:00Z, 2020-02-01T00:00:00Z]" in err
    assert "store results first with evaljobs run, schedule or backfill" in err


def test_a_backwards_range_is_a_usage_error(fraud_store, capsys) -> None:
    config, _url = fraud_store
    code = cli.main(["report", "fraud-daily", "--config", str(config), "--from", "2026-03-10T00:00:00Z",
                     "--to", "2026-03-01T00:00:00Z"])
    assert code == 2 and "is not before --to" in capsys.readouterr().err


def test_an_unwritable_path_is_one_line(fraud_store, tmp_path, capsys) -> None:
    config, _url = fraud_store
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = cli.main(["report", "fraud-daily", "--config", str(config), "--to", iso(REPORT_NOW),
                     "--html", str(blocker / "report.html")])
    err = capsys.readouterr().err
    assert code == 1 and "cannot write the HTML report" in err and "--html" in err


def test_without_plotly_the_error_names_the_extra(fraud_store) -> None:
    config, _url = fraud_store
    # plotly set to None in sys.modules: importing it fails exactly as when it is not installed.
    program = ("import sys; sys.modules['plotly'] = None; from evaljobs.cli import main; "
               f"sys.exit(main(['report', 'fraud-daily', '--config', {str(config)!r}, '--html', 'x.html']))")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == ("evaljobs: error: the HTML report needs Plotly, which is not installed; "
                           "pip install 'evaljobs[report]'\n")


# ---- pure parts -----------------------------------------------------------------------------------
def test_histogram_quantile_as_promql() -> None:
    bounds, counts = (0.1, 0.5, 1.0, 2.5), (10, 20, 50, 100)
    assert histogram_quantile(0.95, bounds, counts, 100) == pytest.approx(2.35)
    assert histogram_quantile(0.5, bounds, counts, 100) == pytest.approx(1.0)
    assert histogram_quantile(0.05, bounds, counts, 100) == pytest.approx(0.05)
    assert histogram_quantile(0.99, bounds, (10, 20, 50, 90), 100) == 2.5  # in +Inf: the last bound
    assert histogram_quantile(0.95, bounds, (0, 0, 0, 0), 0) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.001, 20, allow_nan=False), min_size=1, max_size=300),
       st.sampled_from([0.5, 0.9, 0.95, 0.99]))
def test_histogram_quantile_is_within_one_bucket_of_the_exact_quantile(values, q) -> None:
    bounds = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
    data = np.array(values)
    counts = tuple(int(np.count_nonzero(data <= b)) for b in bounds)
    estimate = histogram_quantile(q, bounds, counts, len(values))
    exact = float(np.quantile(data, q, method="inverted_cdf"))
    if exact > bounds[-1]:
        assert estimate == bounds[-1]
        return
    edges = (0.0, *bounds)
    bucket = next(i for i in range(1, len(edges)) if exact <= edges[i])
    assert edges[bucket - 1] <= estimate <= edges[bucket]


def test_drift_severity_reads_tests_and_distances_the_right_way_round() -> None:
    def feature(method, score, p=None, threshold=0.1):
        return {"method": method, "threshold": threshold, "statistics": {method: {"score": score, "p_value": p}}}

    assert html.drift_severity(feature("psi", 0.4, threshold=0.2)) == pytest.approx(1.0)       # 2x past
    assert html.drift_severity(feature("psi", 0.05, threshold=0.2)) == pytest.approx(-2.0)     # a quarter
    assert html.drift_severity(feature("ks", 0.3, p=0.0125, threshold=0.05)) == pytest.approx(2.0)  # p 4x smaller
    assert html.drift_severity(feature("ks", 0.01, p=0.5, threshold=0.05)) == -html.DRIFT_SEVERITY_CLIP
    assert html.drift_severity(feature("ks", 0.9, p=0.0, threshold=0.05)) == html.DRIFT_SEVERITY_CLIP
    assert html.drift_severity({"method": None, "threshold": None, "statistics": {}}) is None


def _row(version: str, day: int, record: dict) -> dict:
    end = datetime(2026, 1, day, tzinfo=UTC)
    return {"row_kind": "version", "model_version": version, "window_start": end - timedelta(days=1),
            "window_end": end, "record": record}


def test_record_sections_it_does_not_know_are_drawn_generically() -> None:
    """Regression or estimated-performance records (or anything newer) need no edit here."""
    rows = [
        {"row_kind": "job", "window_start": datetime(2026, 1, 1, tzinfo=UTC),
         "window_end": datetime(2026, 1, 2, tzinfo=UTC), "status": "ok", "error": None, "record": {}},
        _row("r1", 2, {"regression": {"mae": 1.5, "rmse": 2.0}, "window_predictions": 10,
                       "prediction_error": {"buckets": [{"le": -1.0, "count": 2}, {"le": 1.0, "count": 7},
                                                        {"le": "+Inf", "count": 9}], "count": 9, "sum": 4.5}}),
        _row("c1", 2, {"accuracy": 0.8, "rows_skipped": 3, "estimated": {
            "accuracy": {"value": 0.83, "lower": 0.8, "upper": 0.86}, "confidence": 0.95, "macro": {"f1": 0.7}}}),
        _row("c1", 3, {"accuracy": 0.9, "estimated": {
            "accuracy": {"value": 0.86, "lower": None, "upper": None}, "confidence": 0.95, "macro": {"f1": 0.75}}}),
    ]
    report = html.JobReport.from_rows("j", "m", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 4, tzinfo=UTC),
                                      None, rows)
    assert html.extra_groups(report) == {
        "regression": [("regression", "mae"), ("regression", "rmse")],
        "other": [("rows_skipped",)],
        "estimated": [("estimated", "accuracy"), ("estimated", "confidence")],  # the interval first
        "estimated.macro": [("estimated", "macro", "f1")],
    }
    sections = {s.title: s for s in html.extra_series_figures(report)}
    assert list(sections) == ["Regression over time", "Other numbers over time", "Estimated over time",
                              "Estimated macro over time"]
    regression = sections["Regression over time"].figure
    assert [(t.name, list(t.y)) for t in regression.data] == [("r1", [1.5]), ("r1", [2.0])]
    estimated = sections["Estimated over time"]
    by_name = {(t.name, t.xaxis): t for t in estimated.figure.data}
    assert list(by_name[("c1", "x")].y) == [0.83, 0.86]
    assert list(by_name[("c1 realised accuracy", "x")].y) == [0.8, 0.9], "estimated beside the realised metric"
    band = next(t for t in estimated.figure.data if t.fill == "toself")
    assert list(band.y) == [0.86, 0.8], "the interval where it is known"
    assert "confidence = 0.95" in estimated.explanation and ("c1", "x2") not in by_name, "constants named, not drawn"
    assert list(sections["Estimated macro over time"].figure.data[0].y) == [0.7, 0.75]
    assert html.quality_figure(report) is not None and html.latency_figure(report) is None
    # A histogram section (a regression job's signed errors) is drawn as one: bars and its mean.
    (histogram,) = html.histogram_figures(report)
    assert histogram.title == "Prediction error: histogram"
    bars, mean = histogram.figure.data
    assert (list(bars.x), list(bars.y)) == (["≤ -1", "≤ 1", "> 1"], [2, 5, 2])
    assert list(mean.y) == [0.5]
    document = html.job_report(report)
    assert document.count('<div class="chart"') == 6  # quality, the histogram, four generic groups


def test_the_report_reads_the_store_on_sqlite_and_postgresql(db_url, tmp_path, capsys) -> None:
    now = datetime(2026, 3, 15, 7, 0, tzinfo=UTC)
    demodata.build(db_url, now=now, days=6)
    config = demo_config(tmp_path, db_url)
    assert cli.main(["backfill", "fraud-daily", "--config", str(config), "--from", iso(now - timedelta(days=4)),
                     "--to", iso(now)]) in (0, 3)
    page = tmp_path / "report.html"
    capsys.readouterr()
    assert cli.main(["report", "fraud-daily", "--config", str(config), "--to", iso(now), "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("job fraud-daily: 4 window(s) ending in (2026-02-13T07:00:00Z, 2026-03-15T07:00:00Z]")
    assert "v3-canary: 3 window(s)" in out and "drift in amount" in out
    # Only the windows ending in (since, until] are read: here the one ending 2026-03-12 06:30.
    report = job_report(config, db_url, datetime(2026, 3, 11, 6, 30, tzinfo=UTC), datetime(2026, 3, 13, 6, 0, tzinfo=UTC))
    assert [w["window_end"] for w in report.windows] == [datetime(2026, 3, 12, 6, 30, tzinfo=UTC)]
    assert page.stat().st_size > 1_000_000


def test_the_estimate_is_drawn_beside_the_realised_accuracy(report) -> None:
    """The demo's binary job stores an estimate (issue 13); the generic chart puts it beside the realised number."""
    sections = {s.title: s for s in html.extra_series_figures(report)}
    figure = sections["Estimate over time"].figure
    lines = {(t.name, t.xaxis): t for t in figure.data if t.fill != "toself"}
    points = report.versions["v3-canary"]
    assert list(lines[("v3-canary", "x")].y) == [p.record["estimate"]["accuracy"]["value"] for p in points]
    assert list(lines[("v3-canary realised accuracy", "x")].y) == [p.record["accuracy"] for p in points]
    assert figure.layout.annotations[0].text == "accuracy"
