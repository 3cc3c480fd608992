"""End to end against real servers: evaljobs pushes the demo to a Pushgateway, a real Prometheus
scrapes it with the shipped config and rules, and its HTTP API must return, for every recording
rule, the series and values computed from evaljobs' own JSON output; every rule must evaluate
without error; and every query of the Grafana dashboard must parse and return data."""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from evaljobs import cli
from dev import localservices, stack
from evaljobs import demodata
from evaljobs.quality import latency

from tests.assets.test_grafana_dashboard import panel_queries, substitute, variable_queries
from tests.assets.test_prometheus_rules import RULES, rules

pytestmark = pytest.mark.service  # real processes: Pushgateway, Prometheus, PostgreSQL

REPOSITORY = Path(__file__).resolve().parents[2]


def histogram_quantile(q: float, buckets: list[dict]) -> float:
    """evaljobs' histogram_quantile (the report's p95) on cumulative buckets ``[{"le", "count"}]``, +Inf
    last: the recording rules' values below are Prometheus's own, so this is checked against it."""
    finite = [b for b in buckets if b["le"] != "+Inf"]
    return latency.histogram_quantile(q, tuple(float(b["le"]) for b in finite),
                                      tuple(int(b["count"]) for b in finite), int(buckets[-1]["count"]))


def test_histogram_quantile_reference() -> None:
    buckets = [{"le": 0.1, "count": 10}, {"le": 0.5, "count": 20}, {"le": 1.0, "count": 50},
               {"le": 2.5, "count": 100}, {"le": "+Inf", "count": 100}]
    assert histogram_quantile(0.95, buckets) == pytest.approx(2.35)
    assert histogram_quantile(0.5, buckets) == pytest.approx(1.0)


def timestamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.fixture
def prometheus(pushgateway, tmp_path):
    config = tmp_path / "prometheus.yml"
    config.write_text(stack.prometheus_config(pushgateway.url, RULES, interval="1s"))
    try:
        server = localservices.start_prometheus(config, tmp_path / "data", log_path=tmp_path / "prometheus.log")
    except FileNotFoundError as exc:
        pytest.fail(f"{exc}; make test installs it")
    with server:
        yield server


def run_all(capsys, at: datetime) -> dict:
    """``evaljobs run --all`` of the repository's schedules.yaml at ``at``; its JSON output."""
    since = time.time()
    code = cli.main(["run", "--all", "--config", str(REPOSITORY / "schedules.yaml"),
                     "--at", at.isoformat(), "--output", "json"])
    output = capsys.readouterr().out
    assert code == 0, output
    return {"since": since, **json.loads(output)}


def values(prometheus_url: str, expr: str, *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(r["metric"].get(k, "") for k in labels): float(r["value"][1])
            for r in stack.query(prometheus_url, expr)}


def test_rules_and_dashboard_against_a_live_prometheus(prometheus, pushgateway, tmp_path, monkeypatch, capsys):
    url = prometheus.url
    database = f"sqlite:///{tmp_path / 'demo.db'}"
    monkeypatch.setenv("EVALJOBS_DATABASE_URL", database)
    monkeypatch.setenv("EVALJOBS_PUSHGATEWAY_URL", pushgateway.url)
    now = cli.now_utc()
    demodata.build(database, now=now)

    # Run 1, ten days back, has the retired fraud/v1; run 2, now, has the canary: the counters
    # of versions in both runs move, and v1's group lingers in the gateway, as in production.
    first = run_all(capsys, now - timedelta(days=10))
    stack.wait_for_push(url, first["since"], jobs=3)
    second = run_all(capsys, now)
    stack.wait_for_push(url, second["since"], jobs=3)

    versions = {(j["job"], j["model"], v["model_version"]): v for j in second["jobs"] for v in j["versions"]}
    earlier = {(j["job"], j["model"], v["model_version"]): v for j in first["jobs"] for v in j["versions"]}
    models = {(j["job"], j["model"]) for j in second["jobs"]}
    assert ("fraud-daily", "fraud", "v1") in set(earlier) - set(versions)  # the retired version
    assert ("fraud-daily", "fraud", "v3-canary") in set(versions) - set(earlier)  # the new one
    ever = set(versions) | set(earlier)
    # A series first pushed by run 2 needs two scrapes before rate() answers.
    stack.wait_for(lambda: len(stack.query(url, "model_version:model_predictions:rate1d")) == len(ever),
                   "a rate for every version ever pushed", timeout=30)

    by_version = ("job", "model", "model_version")
    by_model = ("job", "model")
    version_class = ("job", "model", "model_version", "class")
    model_class = ("job", "model", "class")

    def window_counts(key):
        v = versions[key]
        return v["window_predictions"], v["labeled_predictions"]

    def diagonal(v: dict) -> dict[str, int]:
        cells = {(c["actual"], c["predicted"]): c["count"] for c in v["confusion"]}
        return {c: cells.get((c, c), 0) for c in v.get("per_class", {})}

    def support(v: dict) -> dict[str, int]:
        return {c: s["support"] for c, s in v.get("per_class", {}).items()}

    # Counts summed over a model's current versions (what the model-level rules must divide).
    correct, supports = defaultdict(int), defaultdict(int)
    cells, window, labelled = defaultdict(int), defaultdict(int), defaultdict(int)
    for (job, model, _), v in versions.items():
        for c, n in diagonal(v).items():
            correct[(job, model, c)] += n
        for c, n in support(v).items():
            supports[(job, model, c)] += n
        cells[(job, model)] += sum(c["count"] for c in v["confusion"])
        window[(job, model)] += v["window_predictions"]
        labelled[(job, model)] += v["labeled_predictions"]

    # Estimated accuracy (CBPE): expected correct predictions of the recent window, summed.
    expected_correct, estimated_predictions = defaultdict(float), defaultdict(int)
    for (job, model, _), v in versions.items():
        if v.get("estimate") and v["estimate"]["predictions"]:
            expected_correct[(job, model)] += v["estimate"]["accuracy"]["value"] * v["estimate"]["predictions"]
            estimated_predictions[(job, model)] += v["estimate"]["predictions"]

    def model_correct(m: tuple[str, str]) -> int:
        return sum(n for key, n in correct.items() if key[:2] == m)

    def weighted(m: tuple[str, str], metric: str) -> float:
        """A regression metric over a model's current versions, weighted by labelled predictions."""
        pairs = [(v["regression"][metric], v["regression"]["labeled"]) for k, v in versions.items()
                 if k[:2] == m and v.get("regression")]
        return sum(x * n for x, n in pairs) / sum(n for _, n in pairs)

    regression_models = {k[:2] for k, v in versions.items() if v.get("regression")}

    expected: dict[str, tuple[tuple[str, ...], dict]] = {
        "model_version:evaljobs_window_end_timestamp_seconds:current":
            (by_version, {k: timestamp(v["window_end"]) for k, v in versions.items()}),
        "model_version:model_predictions:rate_window":
            (by_version, {k: v["window_predictions"] / (timestamp(v["window_end"]) - timestamp(v["window_start"]))
                          for k, v in versions.items()}),
        "model_version:model_inference_latency_seconds:mean":
            (by_version, {k: v["latency"]["mean_seconds"] for k, v in versions.items()}),
        "model_version:model_inference_latency_seconds:p95":
            (by_version, {k: histogram_quantile(0.95, v["latency"]["buckets"]) for k, v in versions.items()}),
        "model_version_class:model_correct_predictions:sum":
            (version_class, {(*k, c): n for k, v in versions.items() for c, n in diagonal(v).items()}),
        "model:model_accuracy:ratio":
            (by_model, {m: model_correct(m) / cells[m] for m in models if cells[m]}),
        "model_class:model_recall:ratio":  # no series for a class without labelled examples
            (model_class, {key: correct[key] / n for key, n in supports.items() if n > 0}),
        "model:model_label_coverage:ratio":
            (by_model, {m: labelled[m] / window[m] for m in models}),
        "model:model_mean_absolute_error:mean":
            (by_model, {m: weighted(m, "mae") for m in regression_models}),
        "model:model_root_mean_squared_error:mean":
            (by_model, {m: math.sqrt(weighted(m, "mse")) for m in regression_models}),
        "model_version:model_label_delay_seconds:p90":
            (by_version, {k: histogram_quantile(0.9, v["label_delay"]["delays"]["buckets"]) for k, v in versions.items()}),
        "model_version:model_label_delay_caught:ratio":
            (by_version, {k: v["label_delay"]["labeled_within"]["1"] / v["label_delay"]["labeled_within"]["4"]
                          for k, v in versions.items() if v["label_delay"]["labeled_within"]["4"]}),
        "model:model_estimated_accuracy:ratio":
            (by_model, {m: expected_correct[m] / n for m, n in estimated_predictions.items()}),
    }
    assert regression_models == {("eta-6h", "eta")}
    for record, (labels, want) in expected.items():
        got = values(url, record, *labels)
        assert set(got) == set(want), record
        for key, value in want.items():
            assert got[key] == pytest.approx(value, rel=1e-9), (record, key)

    # Throughput: versions whose counter moved between the runs have a positive rate, the others 0.
    rates = values(url, "model_version:model_predictions:rate1d", *by_version)
    assert set(rates) == ever
    for key, rate in rates.items():
        moved = key in earlier and key in versions and versions[key]["predictions_total"] > earlier[key]["predictions_total"]
        assert (rate > 0) == moved, (key, rate)
    assert any(rate > 0 for rate in rates.values())
    model_rates = values(url, "model:model_predictions:rate1d - on (job, model) "
                              "sum by (job, model) (model_version:model_predictions:rate1d)", *by_model)
    assert set(model_rates) == {m for m in models} and all(abs(x) < 1e-9 for x in model_rates.values())
    checked = set(expected) | {"model_version:model_predictions:rate1d", "model:model_predictions:rate1d"}
    assert checked == {r["record"] for r in rules() if "record" in r}, "every recording rule needs a live check"

    # Every rule, alerting ones included, evaluates without error (e.g. no many-to-many match).
    loaded = [r for g in stack.rule_groups(url) for r in g["rules"]]
    assert len(loaded) == len(rules())
    assert [(r["name"], r.get("lastError")) for r in loaded if r["health"] != "ok"] == []
    firing_or_pending = values(url, "ALERTS", "alertname", "model_version")
    assert ("ModelAccuracyLow", "v3-canary") in firing_or_pending  # the demo's bad canary
    # ... and its estimate for the last day, whose labels are two days away, says so already.
    assert ("ModelEstimatedAccuracyLow", "v3-canary") in firing_or_pending
    assert ("ModelEstimatedAccuracyLow", "v2") not in firing_or_pending

    # The dashboard: template variables list the demo's models and versions, and every panel
    # query, with the variables filled in as Grafana would, parses and returns data.
    variables = variable_queries()
    assert variables["model"] == "label_values(evaljobs_last_success_timestamp_seconds, model)"
    models_listed = {r["metric"]["model"] for r in stack.query(url, "evaljobs_last_success_timestamp_seconds")}
    assert models_listed == {"fraud", "intent", "eta"}
    empty = []
    for model in sorted(models_listed):
        selector = variables["model_version"].removeprefix("label_values(").rsplit(",", 1)[0]
        listed = {r["metric"]["model_version"] for r in stack.query(url, substitute(selector, {"model": model}))}
        current = sorted(v for (_, m, v) in versions if m == model)
        assert set(current) <= listed
        segment_selector = variables["segment"].removeprefix("label_values(").rsplit(",", 1)[0]
        segments = {r["metric"]["segment"] for r in stack.query(url, substitute(segment_selector, {"model": model}))}
        assert segments == {"fraud": {"country", "channel"}, "eta": {"channel"}}.get(model, set())
        for selection in (".+", current[0]):
            for title, expr in panel_queries():
                query = substitute(expr, {"model": model, "model_version": selection,
                                          "segment": min(segments) if segments else "none"})
                if not stack.query(url, query):
                    empty.append((model, selection, title, query))
    # The only empty panels: drift of fraud's v2 and eta's eta-2, the references the demo compares
    # their canaries against (kind: version), which have no drift of their own; and the panels
    # of the other kind of task (classification panels for the regression model, and back); the
    # estimate of the regression model (fraud and intent have estimate sections); and the segment
    # panels of intent, which has no segments.
    regression_panels = {"Mean absolute error", "RMSE", "R2", "Mean error (bias)", "MAE per segment value"}
    classification_panels = {"Accuracy", "Recall per class", "Accuracy per segment value"}
    estimate_panels = {"Estimated and realised accuracy", "Calibration drift (realised - estimated accuracy)"}

    def expected_empty(model: str, selection: str, title: str, query: str) -> bool:
        reference = {"fraud": "v2", "eta": "eta-2"}.get(model)
        if selection == reference and "model_drift_" in query:
            return True
        if title in estimate_panels and model == "eta":
            return True
        if model == "intent" and "model_segment_" in query:
            return True
        return title in (classification_panels if model == "eta" else regression_panels)

    assert [e for e in empty if not expected_empty(*e)] == []
    assert {title for _, _, title, _ in empty} >= regression_panels | classification_panels
