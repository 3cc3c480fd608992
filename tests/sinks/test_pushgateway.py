"""End to end: database -> evaljobs run -> a real Pushgateway -> its /metrics, against scikit-learn."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from evaljobs import cli
from evaljobs.config import Pushgateway
from evaljobs.errors import SinkError
from evaljobs.sinks.pushgateway import PushgatewaySink

from tests.conftest import samples, scrape
from tests.dbdata import Label, Prediction
from tests.db.test_pipeline_db import AT, ORIGIN, evaluate, expected, load_url, make_job

TOL = 1e-9


def random_rows(seed: int, task: str) -> tuple[list[Prediction], list[Label]]:
    rng = random.Random(seed)
    classes = ["0", "1"] if task == "binary" else ["billing", "returns", "tech"]
    predictions, labels = [], []
    for i in range(400):
        at = ORIGIN + timedelta(minutes=rng.randrange(48 * 60))
        predictions.append(Prediction(f"p{i}", rng.choice(["v1", "v2/rc 1"]), at, rng.choice(classes),
                                      round(rng.random(), 2) if task == "binary" and rng.random() < 0.9 else None))
        if rng.random() < 0.8:
            labels.append(Label(f"p{i}", rng.choice(classes), at + timedelta(hours=rng.randrange(60))))
    return predictions, labels


def write_config(tmp_path: Path, db_url: str, gateway_url: str, task: str) -> Path:
    extra = "    positive_label: '1'\n" if task == "binary" else ""
    path = tmp_path / "schedules.yaml"
    path.write_text(
        f"database: {db_url}\npushgateway: {gateway_url}\njobs:\n"
        f"  - name: quality-{task}\n    model: m\n    task: {task}\n{extra}"
        f"    window: 1d\n    label_delay: 1d\n    schedule: '0 0 * * *'\n"
    )
    return path


def value(url: str, name: str, **labels: str) -> float | None:
    found = [s.value for s in samples(url, name) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("seed", [1, 2])
def test_pushed_metrics_equal_sklearn(db_url, pushgateway, tmp_path, task, seed) -> None:
    predictions, labels = random_rows(seed, task)
    load_url(db_url, predictions, labels)
    config = write_config(tmp_path, db_url, pushgateway.url, task)
    assert cli.main(["run", f"quality-{task}", "--config", str(config), "--at", AT.isoformat()]) == 0

    want = expected(make_job(task), predictions, labels)
    metrics_url = f"{pushgateway.url}/metrics"
    job = f"quality-{task}"
    assert set(want["versions"]) == {"v1", "v2/rc 1"}
    for version, exp in want["versions"].items():
        key = {"job": job, "model": "m", "model_version": version}
        assert value(metrics_url, "model_window_predictions", **key) == exp["window"]
        assert value(metrics_url, "model_labeled_predictions", **key) == exp["labelled"]
        assert value(metrics_url, "model_predictions_total", **key) == exp["total"]
        assert value(metrics_url, "model_label_coverage_ratio", **key) == pytest.approx(exp["labelled"] / exp["window"], abs=TOL)
        assert value(metrics_url, "model_accuracy_ratio", **key) == pytest.approx(exp["accuracy"], abs=TOL)
        for c, (p, r, f, support) in exp["per_class"].items():
            assert value(metrics_url, "model_precision_ratio", **key, **{"class": c}) == pytest.approx(p, abs=TOL)
            assert value(metrics_url, "model_recall_ratio", **key, **{"class": c}) == pytest.approx(r, abs=TOL)
            assert value(metrics_url, "model_f1_ratio", **key, **{"class": c}) == pytest.approx(f, abs=TOL)
            pushed_support = sum(s.value for s in samples(metrics_url, "model_confusion_predictions")
                                 if s.labels["model_version"] == version and s.labels["actual"] == c)
            assert pushed_support == support
        for average in ("macro", "weighted"):
            for i, kind in enumerate(("precision", "recall", "f1")):
                assert value(metrics_url, f"model_{average}_{kind}_ratio", **key) == pytest.approx(exp[average][i], abs=TOL)
        if task == "binary":
            assert value(metrics_url, "model_roc_auc_ratio", **key) == pytest.approx(exp["auc"], abs=TOL)
            assert value(metrics_url, "model_log_loss", **key) == pytest.approx(exp["log_loss"], abs=TOL)
            assert value(metrics_url, "model_brier_score", **key) == pytest.approx(exp["brier"], abs=TOL)
        else:
            assert value(metrics_url, "model_roc_auc_ratio", **key) is None
        assert value(metrics_url, "evaljobs_last_success_timestamp_seconds", **key) > AT.timestamp() - 1e9
        assert value(metrics_url, "evaljobs_window_end_timestamp_seconds", **key) == (AT - timedelta(days=1)).timestamp()
    assert value(metrics_url, "evaljobs_orphan_labels", job=job, model="m") == want["orphans"]


def test_families_have_prometheus_types(db_url, pushgateway, tmp_path) -> None:
    predictions, labels = random_rows(3, "binary")
    load_url(db_url, predictions, labels)
    PushgatewaySink(pushgateway.url).push(evaluate(db_url, make_job("binary")))
    types = {f.name: f.type for f in scrape(f"{pushgateway.url}/metrics")}
    assert types["model_predictions"] == "counter"
    assert types["model_accuracy_ratio"] == "gauge"
    assert "model_predictions_created" not in {s.name for f in scrape(f"{pushgateway.url}/metrics") for s in f.samples}


def test_put_replaces_the_whole_group(db_url, pushgateway) -> None:
    """A class that vanished from a version's window vanishes from the gateway too."""
    job = make_job("multiclass")
    t = AT - timedelta(days=1, hours=12)
    load_url(db_url, [Prediction("a", "v1", t, "x"), Prediction("b", "v1", t, "gone")],
             [Label("a", "x", t), Label("b", "gone", t)])
    sink = PushgatewaySink(pushgateway.url)
    sink.push(evaluate(db_url, job))
    url = f"{pushgateway.url}/metrics"
    assert value(url, "model_recall_ratio", model_version="v1", **{"class": "gone"}) == 1.0
    load_url(db_url, [Prediction("a", "v1", t, "x")], [Label("a", "x", t)])
    sink.push(evaluate(db_url, job))
    assert value(url, "model_recall_ratio", model_version="v1", **{"class": "gone"}) is None
    assert value(url, "model_recall_ratio", model_version="v1", **{"class": "x"}) == 1.0


def test_version_without_labels_pushes_counts_but_no_ratios(db_url, pushgateway) -> None:
    t = AT - timedelta(days=1, hours=12)
    load_url(db_url, [Prediction("a", "v-new", t, "1", 0.4)], [])
    PushgatewaySink(pushgateway.url).push(evaluate(db_url, make_job()))
    url = f"{pushgateway.url}/metrics"
    assert value(url, "model_window_predictions", model_version="v-new") == 1
    assert value(url, "model_label_coverage_ratio", model_version="v-new") == 0.0
    for ratio in ("model_accuracy_ratio", "model_macro_f1_ratio", "model_roc_auc_ratio", "model_log_loss"):
        assert value(url, ratio, model_version="v-new") is None


def test_unreachable_gateway_is_one_clear_line(db_url) -> None:
    load_url(db_url, [], [])
    sink = PushgatewaySink.from_config(Pushgateway(url="http://admin:hunter2@127.0.0.1:9"))
    with pytest.raises(SinkError) as info:
        sink.push(evaluate(db_url, make_job()))
    text = str(info.value)
    assert text.startswith("cannot reach Pushgateway http://127.0.0.1:9 for job 'j'")
    assert "hunter2" not in text and "\n" not in text


def test_credentials_leave_the_url_for_a_basic_auth_header() -> None:
    sink = PushgatewaySink.from_config(Pushgateway(url="https://bot:s3cret@gw.example:9443/prefix"))
    assert (sink.url, sink.username, sink.password) == ("https://gw.example:9443/prefix", "bot", "s3cret")
