"""evaljobs gate --html: the page draws each check's point estimate and interval, equal to scipy's
Wilson and statsmodels' Newcombe intervals, beside the thresholds and margins."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from scipy.stats import binomtest
from statsmodels.stats.proportion import confint_proportions_2indep

from evaljobs import cli

from tests.db.test_pipeline_db import AT
from tests.ops.test_gate import load_versions, write_config


def figures(document: str) -> dict[str, dict]:
    """Each chart's Plotly figure (data and layout) as the page passes it to Plotly.newPlot."""
    decoder = json.JSONDecoder()
    out = {}
    for match in re.finditer(r'<div class="chart" data-title="([^"]*)">.*?Plotly\.newPlot\(\s*"chart-\d+",\s*',
                             document, re.S):
        data, end = decoder.raw_decode(document, match.end())
        layout, _ = decoder.raw_decode(document, document.index("{", end))
        out[match.group(1)] = {"data": data, "layout": layout}
    return out


def interval_of(trace: dict, index: int) -> tuple[float, float]:
    value, bars = trace["x"][index], trace["error_x"]
    return value - bars["arrayminus"][index], value + bars["array"][index]


def test_the_gate_page_draws_the_intervals(sqlite_url, tmp_path, capsys) -> None:
    # candidate v2: accuracy 0.80, recall(1) 0.60; baseline v1: accuracy 0.955, recall(1) 0.91.
    load_versions(sqlite_url, v1=(182, 18, 200, 0), v2=(120, 80, 200, 0))
    page = tmp_path / "gate.html"
    code = cli.main(["gate", "fraud-gate", "--config", str(write_config(tmp_path, sqlite_url)), "--at", AT.isoformat(),
                     "--candidate", "v2", "--baseline", "v1", "--html", str(page)])
    capsys.readouterr()
    assert code == 1
    document = page.read_text()
    assert "<title>evaljobs gate fraud-gate: failed (4 of 6 checks)</title>" in document
    charts = figures(document)
    assert list(charts) == ["Thresholds: the candidate against each minimum, with 95% Wilson intervals",
                            "Regression against v1: differences with 95% Newcombe intervals",
                            "Confusion matrices"]

    thresholds = charts["Thresholds: the candidate against each minimum, with 95% Wilson intervals"]
    candidate, baseline, limits = thresholds["data"]
    assert (candidate["name"], baseline["name"]) == ("v2", "v1")
    assert thresholds["layout"]["yaxis"]["ticktext"] == ["accuracy (FAIL)", "recall of class 1 (FAIL)"]
    assert limits["x"] == [0.9, 0.8]
    for index, (trace, hits, trials) in enumerate([(candidate, 320, 400), (candidate, 120, 200),
                                                   (baseline, 382, 400), (baseline, 182, 200)]):
        ci = binomtest(hits, trials).proportion_ci(0.95, method="wilson")
        row = index % 2
        assert trace["x"][row] == pytest.approx(hits / trials)
        assert interval_of(trace, row) == pytest.approx((ci.low, ci.high), abs=1e-12)

    regression = charts["Regression against v1: differences with 95% Newcombe intervals"]
    drops, margins = regression["data"]
    assert regression["layout"]["yaxis"]["ticktext"] == [
        "accuracy vs baseline (FAIL)", "recall of class 0 vs baseline (pass)", "recall of class 1 vs baseline (FAIL)"]
    assert margins["x"] == [0.02, 0.05, 0.05]
    for row, (b_hits, b_trials, c_hits, c_trials) in enumerate([(382, 400, 320, 400), (200, 200, 200, 200),
                                                                (182, 200, 120, 200)]):
        want = confint_proportions_2indep(b_hits, b_trials, c_hits, c_trials, method="newcomb", compare="diff")
        assert drops["x"][row] == pytest.approx(b_hits / b_trials - c_hits / c_trials)
        assert interval_of(drops, row) == pytest.approx(want, abs=1e-9)
    # Failed rows red, passed green: the colour says what the check said.
    assert drops["marker"]["color"] == ["#cf222e", "#1a7f37", "#cf222e"]


def test_without_a_baseline_only_the_thresholds_are_drawn(sqlite_url, tmp_path, capsys) -> None:
    load_versions(sqlite_url, v2=(184, 16, 200, 0))
    page = tmp_path / "gate.html"
    code = cli.main(["gate", "fraud-gate", "--config", str(write_config(tmp_path, sqlite_url)), "--at", AT.isoformat(),
                     "--html", str(page)])
    capsys.readouterr()
    assert code == 0
    charts = figures(page.read_text())
    assert list(charts) == ["Thresholds: the candidate against each minimum, with 95% Wilson intervals",
                            "Confusion matrices"]
    assert [t["name"] for t in charts[next(iter(charts))]["data"]] == ["v2", "threshold (minimum)"]


def test_an_unwritable_page_is_one_line(sqlite_url, tmp_path, capsys) -> None:
    load_versions(sqlite_url, v2=(184, 16, 200, 0))
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = cli.main(["gate", "fraud-gate", "--config", str(write_config(tmp_path, sqlite_url)), "--at", AT.isoformat(),
                     "--html", str(blocker / "gate.html")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "cannot write the HTML report" in err and "--html" in err


def test_a_regression_gate_draws_r2_and_the_welch_interval_of_the_mae_rise(tmp_path, capsys) -> None:
    """The eta job of schedules.yaml (a regression model whose canary over-predicts) on the demo data."""
    from datetime import datetime, timedelta, timezone

    from evaljobs import demodata
    from tests.sinks.conftest import demo_config

    now = datetime(2026, 3, 15, 7, 0, tzinfo=timezone.utc)
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    demodata.build(url, now=now, days=3)
    page = tmp_path / "eta-gate.html"
    code = cli.main(["gate", "eta-6h", "--config", str(demo_config(tmp_path, url)), "--at", "2026-03-15T00:45:00Z",
                     "--candidate", "eta-3-canary", "--baseline", "eta-2", "--html", str(page)])
    markdown = capsys.readouterr().out
    assert code == 1
    charts = figures(page.read_text())
    assert list(charts)[:2] == ["Thresholds: the candidate against each minimum",
                                "Regression against eta-2: differences with 95% Welch intervals"]
    r2 = charts["Thresholds: the candidate against each minimum"]
    assert r2["layout"]["yaxis"]["ticktext"] == ["R2 (FAIL)"] and r2["data"][-1]["x"] == [0.5]
    rise = charts["Regression against eta-2: differences with 95% Welch intervals"]["data"][0]
    low, high = interval_of(rise, 0)
    assert f"MAE rise {rise['x'][0]:+.4g} (95% Welch interval [{low:+.4g}, {high:+.4g}])" in markdown


def gate_page_for_browser(sqlite_url: str, tmp_path: Path) -> Path:
    """A failing gate's page, for the browser test."""
    load_versions(sqlite_url, v1=(182, 18, 200, 0), v2=(120, 80, 200, 0))
    page = tmp_path / "gate.html"
    cli.main(["gate", "fraud-gate", "--config", str(write_config(tmp_path, sqlite_url)), "--at", AT.isoformat(),
              "--candidate", "v2", "--baseline", "v1", "--html", str(page)])
    return page
