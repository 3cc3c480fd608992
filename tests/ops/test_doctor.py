"""`evaljobs doctor JOB`: one line per finding with its fix, and exit 1 when a run is blocked.
Real PostgreSQL and SQLite, a real Pushgateway; the printed CREATE INDEX statements are run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from evaljobs.db.engine import connect

pytestmark = pytest.mark.service

TABLES = [
    "CREATE TABLE predictions (prediction_id VARCHAR(64), model_name VARCHAR(200), model_version VARCHAR(200), "
    "predicted_at TIMESTAMP WITH TIME ZONE, predicted_label VARCHAR(200))",
    "CREATE TABLE labels (prediction_id VARCHAR(64), label VARCHAR(200), labeled_at TIMESTAMP WITH TIME ZONE)",
    "INSERT INTO labels VALUES ('a', '1', '2026-01-01 00:00:00')",
]


def doctor(tmp_path: Path, url: str, pushgateway: str | None) -> tuple[int, list[str]]:
    gateway = f"pushgateway: {{url: '{pushgateway}', timeout_seconds: 2}}\n" if pushgateway else ""
    config = tmp_path / "doctor.yaml"
    config.write_text(f"database: '{url}'\n{gateway}jobs:\n"
                      "  - {name: j, model: m, task: multiclass, window: 1d, schedule: '0 * * * *'}\n")
    done = subprocess.run([sys.executable, "-m", "evaljobs", "doctor", "j", "--config", str(config)],
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr
    return done.returncode, done.stdout.splitlines()


def create(url: str, statements: list[str]) -> None:
    engine = connect(url, create=True)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    engine.dispose()


def test_missing_indexes_and_label_key_are_fixed_by_the_printed_statements(db_url, tmp_path, pushgateway) -> None:
    create(db_url, TABLES)
    code, lines = doctor(tmp_path, db_url, pushgateway.url)
    assert code == 0, lines
    warnings = [line for line in lines if line.startswith("warn")]
    fixes = [re.search(r"fix: (CREATE [^;]*;)", line).group(1) for line in warnings]
    assert len(fixes) == 3, lines  # two indexes and the unique label key
    assert "CREATE INDEX predictions_model_time ON predictions (model_name, predicted_at);" in fixes
    assert any(line.startswith("ok    pushgateway") for line in lines)
    create(db_url, [fix.rstrip(";") for fix in fixes])
    code, lines = doctor(tmp_path, db_url, pushgateway.url)
    assert code == 0 and not [line for line in lines if not line.startswith("ok")], lines
    assert any("one label per prediction is declared" in line for line in lines)


def test_several_labels_per_prediction_are_reported_not_warned(db_url, tmp_path, pushgateway) -> None:
    create(db_url, TABLES + ["INSERT INTO labels VALUES ('a', '2', '2026-01-02 00:00:00')"])
    code, lines = doctor(tmp_path, db_url, pushgateway.url)
    assert code == 0
    assert any(line.startswith("ok    labels: 1 prediction id(s) have several labels") for line in lines), lines


def test_what_blocks_a_run_exits_1(postgres_url, tmp_path) -> None:
    create(postgres_url, [TABLES[0].replace("predicted_label VARCHAR(200)", "predicted_class VARCHAR(200)"),
                          TABLES[1]])
    code, lines = doctor(tmp_path, postgres_url, "http://127.0.0.1:9")
    assert code == 1
    assert lines[0].startswith("error job 'j': column 'predicted_label' not found in 'predictions'"), lines
    assert "fix: set columns.predicted_label" in lines[0]
    assert lines[-1].startswith("error pushgateway: http://127.0.0.1:9 does not answer"), lines


def test_a_text_timestamp_on_postgresql_is_an_error(postgres_url, tmp_path) -> None:
    create(postgres_url, [TABLES[0].replace("predicted_at TIMESTAMP WITH TIME ZONE", "predicted_at VARCHAR(40)"),
                          TABLES[1]])
    code, lines = doctor(tmp_path, postgres_url, None)
    assert code == 1
    assert any(line.startswith("error predictions.predicted_at: type VARCHAR(40) is not a timestamp")
               for line in lines), lines
    assert lines[-1].startswith("warn  pushgateway: none configured")
