"""The Grafana dashboard and provisioning files: a bare, provisionable dashboard model whose
queries read only series that exist. (test_live_prometheus.py runs every query for real.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.assets.test_prometheus_rules import (
    PUSHGATEWAY_SERIES,
    exposed_series,
    metric_names,
    rules,
)

GRAFANA_DIR = Path(__file__).resolve().parents[2] / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "evaljobs.json"
PROVIDER = GRAFANA_DIR / "provisioning" / "dashboards" / "evaljobs.yaml"
DATASOURCE = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yaml"


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def query_panels() -> list[dict]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL expression) of every query in the dashboard."""
    return [(p["title"], t["expr"]) for p in query_panels() for t in p["targets"]]


def variable_queries() -> dict[str, str]:
    """Template variable name -> its ``label_values(...)`` query."""
    return {v["name"]: v["query"]["query"] for v in dashboard()["templating"]["list"] if v["type"] == "query"}


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace ``$name`` / ``${name}`` template variables with ``values``."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values[m.group(1)], expr)


def test_bare_dashboard_model_with_stable_uid() -> None:
    model = dashboard()
    assert "dashboard" not in model and model["id"] is None  # not the HTTP API envelope
    assert model["uid"] == "evaljobs-models" and len(model["uid"]) <= 40
    assert model["title"].strip()
    assert isinstance(model["schemaVersion"], int)


def test_model_and_version_variables() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["model"]["type"] == "query" and not variables["model"]["multi"]
    version = variables["model_version"]
    assert version["type"] == "query" and version["multi"] and version["includeAll"]
    assert '$model' in version["query"]["query"]
    for query in variable_queries().values():
        assert re.fullmatch(r'label_values\((.+), (\w+)\)', query)


def test_every_panel_queries_the_selected_prometheus() -> None:
    panels = query_panels()
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24
    cells = set()
    for panel in dashboard()["panels"]:
        g = panel["gridPos"]
        covered = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered


def test_required_panels_and_thresholds() -> None:
    panels = {p["title"]: p for p in query_panels()}
    for title in ("Throughput", "Average latency", "p95 latency", "Accuracy", "Recall per class",
                  "Drift score per feature", "Label coverage", "Last successful run"):
        assert title in panels
    for title, value in (("Average latency", 1), ("p95 latency", 1), ("Accuracy", 0.9)):
        defaults = panels[title]["fieldConfig"]["defaults"]
        assert value in [step["value"] for step in defaults["thresholds"]["steps"]], title
        assert defaults["custom"]["thresholdsStyle"]["mode"] != "off", title
    assert panels["Accuracy"]["fieldConfig"]["defaults"]["unit"] == "percentunit"
    assert panels["p95 latency"]["fieldConfig"]["defaults"]["unit"] == "s"
    assert "model_predictions" in " ".join(t["expr"] for t in panels["Throughput"]["targets"])


def test_queries_read_only_series_that_exist() -> None:
    known = exposed_series() | PUSHGATEWAY_SERIES | {r["record"] for r in rules() if "record" in r}
    queries = panel_queries() + [("variable " + k, v) for k, v in variable_queries().items()]
    for title, expr in queries:
        for name in metric_names(expr):
            assert name in known, f"panel {title!r} reads unknown series {name}"
    assert all("$model" in expr for _, expr in panel_queries())


def test_substitution() -> None:
    assert substitute('x{model="$model", v=~"${model_version}"}', {"model": "m", "model_version": ".+"}) == \
        'x{model="m", v=~".+"}'


def test_provisioning_files() -> None:
    provider = yaml.safe_load(PROVIDER.read_text())
    assert provider["apiVersion"] == 1
    [entry] = provider["providers"]
    assert entry["type"] == "file" and entry["name"] and entry["options"]["path"]
    source = yaml.safe_load(DATASOURCE.read_text())
    assert source["apiVersion"] == 1 and source["datasources"][0]["type"] == "prometheus"


def test_estimated_and_realised_accuracy_share_one_panel() -> None:
    panels = {p["title"]: p for p in query_panels()}
    panel = panels["Estimated and realised accuracy"]
    exprs = [t["expr"] for t in panel["targets"]]
    assert any(e.startswith("model_estimated_accuracy_ratio{") for e in exprs)
    assert any(e.startswith("model_accuracy_ratio{") for e in exprs)
    defaults = panel["fieldConfig"]["defaults"]
    assert defaults["unit"] == "percentunit" and 0.9 in [s["value"] for s in defaults["thresholds"]["steps"]]
    gap = panels["Calibration drift (realised - estimated accuracy)"]
    assert "model_estimate_accuracy_gap_ratio" in gap["targets"][0]["expr"]
    assert {-0.05, 0.05} <= {s["value"] for s in gap["fieldConfig"]["defaults"]["thresholds"]["steps"]}


def test_segment_variable_and_panels() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    segment = variables["segment"]
    assert segment["type"] == "query" and not segment["multi"] and "$model" in segment["query"]["query"]
    segmented = [(title, expr) for title, expr in panel_queries() if "model_segment_" in expr]
    assert {title for title, _ in segmented} >= {"Accuracy per segment value", "MAE per segment value"}
    assert all('segment="$segment"' in expr for _, expr in segmented)
