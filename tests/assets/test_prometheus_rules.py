"""The shipped Prometheus files: promtool accepts them, every rule has a unit test, and every
metric a rule reads is one evaljobs (or the Pushgateway) really exposes."""

from __future__ import annotations

import functools
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from prometheus_client.core import Metric

from dev import localservices
from evaljobs import demodata
from evaljobs import exposition
from evaljobs.config import load_config
from evaljobs.ops.runner import Runner
from evaljobs.windows import parse_timestamp

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "prometheus"
RULES = PROMETHEUS_DIR / "evaljobs.rules.yml"
RULE_TESTS = PROMETHEUS_DIR / "evaljobs.rules.test.yml"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
SCHEDULES = PROMETHEUS_DIR.parent / "schedules.yaml"
DEMO_AT = parse_timestamp("2026-11-20T06:30:00Z")

#: Series the Pushgateway adds to every group.
PUSHGATEWAY_SERIES = {"push_time_seconds", "push_failure_time_seconds"}
#: Label names that look like metric names in an expression.
LABEL_NAMES = {"model_version"}
_METRIC_TOKEN = re.compile(r"(?<![\w:\"$])([a-z_]+:[a-z_]+:[a-z0-9_]+|(?:model|evaljobs|push)_[a-z_]+)\b(?!\")")


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = localservices.find_binary(("promtool",))
    if binary is None:
        pytest.fail("promtool not found; install the Debian package prometheus (make test does)")
    return subprocess.run([binary, *args], capture_output=True, text=True, cwd=PROMETHEUS_DIR, timeout=120)


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


@functools.cache
def rendered_families() -> tuple[Metric, ...]:
    """The families of every Pushgateway group of the shipped jobs, evaluated on demo data
    (SQLite; binary and multiclass, scores, drift, latency): what evaljobs really pushes."""
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'demo.db'}"
        demodata.build(url, now=DEMO_AT, days=6)
        config = load_config(SCHEDULES, environ={"EVALJOBS_DATABASE_URL": url})
        with Runner(config) as runner:
            results = [runner.evaluate(job, DEMO_AT) for job in config.jobs]
    return tuple(family for result in results for _, families in exposition.groups(result, DEMO_AT.timestamp())
                 for family in families)


def exposed_series() -> frozenset[str]:
    """Every series name evaljobs pushes: the sample names of rendered results, so a counter
    is only ``_total`` and only histograms have ``_bucket``/``_sum``/``_count``."""
    return frozenset(sample.name for family in rendered_families() for sample in family.samples)


def metric_names(expr: str) -> set[str]:
    """Metric and recorded-series names an expression reads (quoted strings left out)."""
    unquoted = re.sub(r'"[^"]*"', '""', expr)
    return {m for m in _METRIC_TOKEN.findall(unquoted) if m not in LABEL_NAMES}


@pytest.mark.service
def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


@pytest.mark.service
def test_promtool_check_config_loads_the_rules() -> None:
    result = promtool("check", "config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(CONFIG.read_text())
    [scrape] = [s for s in config["scrape_configs"] if s["job_name"] == "pushgateway"]
    assert scrape["honor_labels"] is True
    assert config["rule_files"] == ["evaljobs.rules.yml"]
    assert "job_name: node" in CONFIG.read_text()  # the commented node_exporter example


@pytest.mark.service
def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_rule_has_a_unit_test() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    tested_exprs = " ".join(t["expr"] for test in tests for t in test.get("promql_expr_test", []))
    tested_alerts = {t["alertname"] for test in tests for t in test.get("alert_rule_test", [])}
    firing = {t["alertname"] for test in tests for t in test.get("alert_rule_test", []) if t["exp_alerts"]}
    silent = {t["alertname"] for test in tests for t in test.get("alert_rule_test", []) if not t["exp_alerts"]}
    records = {r["record"] for r in rules() if "record" in r}
    alerts = {r["alert"] for r in rules() if "alert" in r}
    assert records and alerts
    assert not {r for r in records if not re.search(rf"(?<![\w:]){re.escape(r)}(?![\w:])", tested_exprs)}
    assert alerts <= tested_alerts
    assert alerts <= firing, "every alert needs a test where it fires"
    assert silent, "at least one alert test must check that an alert does not fire"
    throughput = [test for test in tests if any("rate1d" in t["expr"] for t in test.get("promql_expr_test", []))]
    assert len({t["eval_time"] for test in throughput for t in test["promql_expr_test"]}) >= 3


def test_rule_names_follow_the_conventions() -> None:
    for rule in rules():
        if "record" in rule:
            level, metric, operations = rule["record"].split(":")
            assert level and operations and re.fullmatch(r"[a-z_]+", level), rule["record"]
            assert not metric.endswith("_total"), f"{rule['record']}: strip _total after rate()"
        else:
            assert re.fullmatch(r"[A-Z][A-Za-z]+", rule["alert"])
            assert rule["labels"]["severity"] and rule["annotations"]["summary"]


def test_rules_read_only_series_that_exist() -> None:
    """A typo in a metric name makes a rule silently empty; promtool cannot see it."""
    records = {r["record"] for r in rules() if "record" in r}
    known = exposed_series() | PUSHGATEWAY_SERIES | records
    for rule in rules():
        for name in metric_names(rule["expr"]):
            assert name in known, f"{rule.get('record') or rule.get('alert')} reads unknown series {name}"
    assert "model_predictions_total" in metric_names(rules()[1]["expr"])


def test_exposed_series_are_rendered_sample_names_of_every_family() -> None:
    # The demo results must render every family evaljobs declares, or a family's series would
    # be missing here and rules reading it would be wrongly refused.
    assert {family.name for family in rendered_families()} == set(exposition.FAMILIES)
    series = exposed_series()
    assert {"model_predictions_total", "model_accuracy_ratio", "model_inference_latency_seconds_bucket",
            "model_inference_latency_seconds_sum", "model_inference_latency_seconds_count"} <= series


@pytest.mark.parametrize("typo", [
    "sum(rate(model_predictions[1d]))",  # a counter read without _total
    "histogram_quantile(0.9, model_accuracy_ratio_bucket)",  # a gauge read as a histogram
    "model_roc_auc_ratio_total",  # a gauge read as a counter
    "model_inference_latency_seconds",  # a histogram's family name is no series
    "model_acuracy_ratio < 0.9",
])
def test_a_wrong_series_name_is_refused(typo: str) -> None:
    known = exposed_series() | PUSHGATEWAY_SERIES
    assert metric_names(typo) and not metric_names(typo) <= known, typo


def test_metric_name_extraction() -> None:
    names = metric_names('sum by (job, model_version) (rate(model_predictions_total{model_version!="x"}[1d]))'
                        ' / on (job) model:model_accuracy:ratio and "model_fake"')
    assert names == {"model_predictions_total", "model:model_accuracy:ratio"}


def test_thresholds_are_documented() -> None:
    text = RULES.read_text()
    readme = (PROMETHEUS_DIR.parent / "README.md").read_text()
    for alert, threshold in [("ModelInferenceLatencyHigh", "> 1"), ("ModelAccuracyLow", "< 0.9"),
                             ("ModelLabelCoverageLow", "< 0.5")]:
        [rule] = [r for r in rules() if r.get("alert") == alert]
        assert threshold in rule["expr"]
        assert alert in readme
    assert "Thresholds" in text
