"""The estimate end to end: the shipped schedules.yaml on demo data, through the CLI. The canary's
estimated accuracy of its last day is low when that day has no labels yet, and the accuracy
realised there two days later lies within the estimate's interval."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from evaljobs import cli
from evaljobs import demodata
from evaljobs.windows import parse_timestamp

REPOSITORY = Path(__file__).resolve().parents[2]
AT = parse_timestamp("2026-11-20T06:30:00Z")


def run_json(at, capsys) -> dict:
    assert cli.main(["run", "fraud-daily", "--config", str(REPOSITORY / "schedules.yaml"), "--at",
                     at.isoformat(), "--dry-run", "--output", "json"]) == 0
    [job] = json.loads(capsys.readouterr().out)["jobs"]
    return {v["model_version"]: v for v in job["versions"]}


def test_the_canarys_estimate_falls_before_its_labels_arrive(sqlite_url, tmp_path, monkeypatch, capsys) -> None:
    # Two more days of data than the evaluation at AT sees: its labels are what arrives later.
    demodata.build(sqlite_url, now=AT + timedelta(days=2), days=8)
    monkeypatch.setenv("EVALJOBS_DATABASE_URL", sqlite_url)

    now = run_json(AT, capsys)
    later = run_json(AT + timedelta(days=2), capsys)
    for version in ("v2", "v3-canary"):
        estimate = now[version]["estimate"]
        assert (estimate["window_start"], estimate["window_end"]) == \
            ((AT - timedelta(days=1)).isoformat(), AT.isoformat())
        # Two days later that window is the labelled one, and its realised accuracy is known.
        realised = later[version]
        assert (realised["window_start"], realised["window_end"]) == (estimate["window_start"], estimate["window_end"])
        accuracy = estimate["accuracy"]
        # One window each, so 3 standard errors (the 95% coverage over many windows is in test_estimate.py).
        assert abs(realised["accuracy"] - accuracy["value"]) < 3 * accuracy["standard_error"], (version, accuracy, realised)
        assert estimate["reference"]["kind"] == "previous_window" and estimate["reference"]["rows"] > 100
        assert estimate["reference_calibration_error"] < 0.1  # the demo's scores are calibrated
    assert now["v3-canary"]["estimate"]["accuracy"]["value"] < 0.9 < now["v2"]["estimate"]["accuracy"]["value"]
    # The gap of the window labelled by then: estimated two days before, realised now.
    check = later["v3-canary"]["estimate"]["calibration_check"]
    assert abs(check["gap"]) < 3 * check["standard_error"]

    textfile = tmp_path / "evaljobs.prom"
    assert cli.main(["run", "fraud-daily", "--config", str(REPOSITORY / "schedules.yaml"), "--at", AT.isoformat(),
                     "--dry-run", "--textfile", str(textfile)]) == 0
    table = capsys.readouterr().out
    assert "estimated performance of fraud-daily over 2026-11-19 06:30 .. 2026-11-20 06:30 UTC" in table
    samples = {(s.name, s.labels.get("model_version"), s.labels.get("metric"), s.labels.get("class")): s.value
               for family in text_string_to_metric_families(textfile.read_text()) for s in family.samples}
    canary = now["v3-canary"]["estimate"]
    assert samples[("model_estimated_accuracy_ratio", "v3-canary", None, None)] == canary["accuracy"]["value"]
    assert samples[("model_estimated_lower_ratio", "v3-canary", "accuracy", "")] == canary["accuracy"]["lower"]
    assert samples[("model_estimated_f1_ratio", "v3-canary", None, "1")] == canary["per_class"]["1"]["f1"]["value"]
    assert samples[("model_estimate_window_end_timestamp_seconds", "v3-canary", None, None)] == AT.timestamp()
    assert samples[("model_estimate_window_predictions", "v3-canary", None, None)] == canary["predictions"]


def test_the_intent_estimate_through_the_cli(sqlite_url, tmp_path, monkeypatch, capsys) -> None:
    """The demo's multiclass job: estimated from its per-class probability columns (one-vs-rest),
    published per class and as macro averages, and within 3 standard errors of what the labels
    say a day later."""
    at = parse_timestamp("2026-11-20T06:15:00Z")
    demodata.build(sqlite_url, now=at + timedelta(days=1), days=8)
    monkeypatch.setenv("EVALJOBS_DATABASE_URL", sqlite_url)

    def run(when) -> dict:
        assert cli.main(["run", "intent-6h", "--config", str(REPOSITORY / "schedules.yaml"), "--at",
                         when.isoformat(), "--dry-run", "--output", "json"]) == 0
        [job] = json.loads(capsys.readouterr().out)["jobs"]
        return {v["model_version"]: v for v in job["versions"]}

    now, later = run(at), run(at + timedelta(days=1))
    for version in ("2024.1", "2024.2"):
        estimate = now[version]["estimate"]
        assert (estimate["window_start"], estimate["window_end"]) == ((at - timedelta(hours=6)).isoformat(), at.isoformat())
        assert set(estimate["per_class"]) == set(demodata.INTENT_CLASSES)
        assert set(estimate["macro"]) == {"precision", "recall", "f1"}
        macro_f1 = sum(m["f1"]["value"] for m in estimate["per_class"].values()) / len(demodata.INTENT_CLASSES)
        assert abs(estimate["macro"]["f1"]["value"] - macro_f1) < 1e-12
        realised = later[version]
        assert (realised["window_start"], realised["window_end"]) == (estimate["window_start"], estimate["window_end"])
        accuracy = estimate["accuracy"]
        assert abs(realised["accuracy"] - accuracy["value"]) < 3 * accuracy["standard_error"], (version, accuracy, realised)

    textfile = tmp_path / "evaljobs.prom"
    assert cli.main(["run", "intent-6h", "--config", str(REPOSITORY / "schedules.yaml"), "--at", at.isoformat(),
                     "--dry-run", "--textfile", str(textfile)]) == 0
    assert "est. macro F1" in capsys.readouterr().out
    samples = {(s.name, s.labels.get("model_version"), s.labels.get("metric"), s.labels.get("class")): s.value
               for family in text_string_to_metric_families(textfile.read_text()) for s in family.samples}
    estimate = now["2024.2"]["estimate"]
    assert samples[("model_estimated_accuracy_ratio", "2024.2", None, None)] == estimate["accuracy"]["value"]
    assert samples[("model_estimated_macro_f1_ratio", "2024.2", None, None)] == estimate["macro"]["f1"]["value"]
    assert samples[("model_estimated_upper_ratio", "2024.2", "macro_f1", "")] == estimate["macro"]["f1"]["upper"]
    assert samples[("model_estimated_recall_ratio", "2024.2", None, "billing")] == \
        estimate["per_class"]["billing"]["recall"]["value"]
