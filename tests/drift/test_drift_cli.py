"""Drift end to end: the shipped schedules.yaml on demo data, through the CLI, into a real
Pushgateway; and bad drift input giving one-line warnings and exit code 3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from evaljobs import cli
from evaljobs import demodata
from evaljobs.errors import EXIT_PARTIAL, EXIT_USAGE
from evaljobs.windows import parse_timestamp

from tests.conftest import samples

REPOSITORY = Path(__file__).resolve().parents[2]
AT = "2026-11-20T06:30:00Z"


@pytest.fixture
def demo_database(db_url: str) -> str:
    demodata.build(db_url, now=parse_timestamp(AT), days=6)
    return db_url


def test_demo_shows_drift_in_table_json_and_pushgateway(demo_database, pushgateway, monkeypatch, capsys):
    monkeypatch.setenv("EVALJOBS_DATABASE_URL", demo_database)
    monkeypatch.setenv("EVALJOBS_PUSHGATEWAY_URL", pushgateway.url)
    config = str(REPOSITORY / "schedules.yaml")

    assert cli.main(["run", "--all", "--config", config, "--at", AT]) == 0
    table = capsys.readouterr().out
    assert "drift of fraud-daily against version v2 over the same window" in table
    assert "drift of intent-6h against previous window" in table
    rows = {tuple(line.split()[:2]): line.split() for line in table.splitlines() if line.startswith("fraud/v3-canary")}
    assert rows[("fraud/v3-canary", "amount")][-1] == "DRIFT"
    assert rows[("fraud/v3-canary", "country")][-1] == "no"

    metrics = f"{pushgateway.url}/metrics"
    detected = {(s.labels["job"], s.labels["model_version"], s.labels["feature"]): s.value
                for s in samples(metrics, "model_drift_detected")}
    assert detected[("fraud-daily", "v3-canary", "amount")] == 1
    assert detected[("fraud-daily", "v3-canary", "country")] == 0
    assert not any(version == "v2" for _, version, _ in detected)  # the champion is the reference
    assert {s.labels["method"] for s in samples(metrics, "model_drift_p_value")} == {"ks", "chi_square"}
    scores = {(s.labels["feature"], s.labels["method"]) for s in samples(metrics, "model_drift_score")
              if s.labels["model_version"] == "v3-canary"}
    assert {("amount", m) for m in ("psi", "jensen_shannon", "wasserstein", "ks")} <= scores
    assert {("country", m) for m in ("psi", "jensen_shannon", "chi_square")} <= scores
    reference = {(s.labels["job"], s.labels["reference"]): s.value for s in samples(metrics, "model_drift_reference_predictions")}
    assert reference[("fraud-daily", "version")] > 1000 and reference[("intent-6h", "previous_window")] > 100
    nulls = [s for s in samples(metrics, "model_feature_null_ratio") if s.labels["feature"] == "amount"]
    assert nulls and all(s.value == 0 for s in nulls)

    assert cli.main(["run", "fraud-daily", "--config", config, "--at", AT, "--dry-run", "--output", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    canary = next(v for v in document["jobs"][0]["versions"] if v["model_version"] == "v3-canary")
    amount = next(f for f in canary["drift"]["features"] if f["feature"] == "amount")
    assert canary["drift"]["reference"]["kind"] == "version"
    assert amount["detected"] is True and amount["method"] == "wasserstein"
    assert set(amount["statistics"]) == {"psi", "jensen_shannon", "wasserstein", "ks"}
    assert sum(b["current"] for b in amount["buckets"]) == amount["current_values"]


def canary_drift_config(tmp_path, database: str, gateway_url: str, features: str):
    """The demo's fraud job, its canary compared with v2 on ``features`` (YAML flow list)."""
    config = tmp_path / "drift.yaml"
    config.write_text(f"""
database: {database}
pushgateway: {gateway_url}
jobs:
  - name: fraud-daily
    model: fraud
    task: binary
    positive_label: 1
    window: 1d
    label_delay: 2d
    schedule: "30 6 * * *"
    drift:
      reference: {{kind: version, version: v2}}
      features: {features}
""")
    return config


def test_bad_drift_input_warns_in_one_line_and_exits_partial(demo_database, pushgateway, tmp_path, capsys):
    engine = sa.create_engine(demo_database)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE predictions ADD COLUMN note VARCHAR(20)"))
        conn.execute(sa.text("UPDATE predictions SET note = 'n/a'"))
    engine.dispose()
    config = canary_drift_config(tmp_path, demo_database, pushgateway.url,
                                 "[amount, no_such_column, {name: note, kind: numeric}]")
    assert cli.main(["run", "fraud-daily", "--config", str(config), "--at", AT]) == EXIT_PARTIAL
    out, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if line.startswith("evaljobs: warning:")]
    assert len(warnings) == 2, err
    assert any("job 'fraud-daily' feature 'no_such_column': column 'no_such_column' not found" in w for w in warnings)
    assert any("job 'fraud-daily' feature 'note':" in w and "n/a" in w for w in warnings)
    assert "Traceback" not in err
    assert "fraud/v3-canary  amount" in out
    detected = {s.labels["feature"] for s in samples(f"{pushgateway.url}/metrics", "model_drift_detected")}
    assert detected == {"amount", "predicted_label", "score", "label"}


def test_a_bad_drift_config_is_one_line_and_exit_2(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("""
jobs:
  - name: j
    model: m
    task: multiclass
    window: 1d
    schedule: "0 * * * *"
    drift:
      reference: {kind: version}
      features: [amount]
""")
    assert cli.main(["run", "j", "--config", str(config), "--dry-run"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err == ("evaljobs: error: bad.yaml: jobs[0] (j).drift.reference: a version reference needs version "
                   "(e.g. version: v2)")


def test_nan_in_a_feature_warns_in_one_line_exits_partial_and_pushes_no_verdict(postgres_url, pushgateway, tmp_path, capsys):
    demodata.build(postgres_url, now=parse_timestamp(AT), days=6)
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        # The canary's amount drifts (see the demo test); a NaN must not turn that into "no drift".
        conn.execute(sa.text(
            "UPDATE predictions SET amount = 'NaN' WHERE prediction_id IN (SELECT prediction_id FROM predictions "
            "WHERE model_version = 'v3-canary' ORDER BY amount DESC LIMIT 200)"))
    engine.dispose()
    config = canary_drift_config(tmp_path, postgres_url, pushgateway.url, "[amount, country]")
    assert cli.main(["run", "fraud-daily", "--config", str(config), "--at", AT]) == EXIT_PARTIAL
    _, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if line.startswith("evaljobs: warning:")]
    assert len(warnings) == 1 and "Traceback" not in err, err
    assert warnings[0].startswith("evaljobs: warning: job 'fraud-daily' version 'v3-canary' feature 'amount': ")
    assert "NaN or infinite value" in warnings[0] and "drift not computed" in warnings[0]
    detected = {s.labels["feature"]: s.value for s in samples(f"{pushgateway.url}/metrics", "model_drift_detected")
                if s.labels["model_version"] == "v3-canary"}
    assert "amount" not in detected and detected["country"] == 0
