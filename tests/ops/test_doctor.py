"""`evaljobs doctor JOB`: one line per finding with its fix, and exit 1 when a run is blocked.
Real PostgreSQL and SQLite, a real Pushgateway; the printed CREATE INDEX statements are run;
every engine of the matrix (DuckDB and Spark too) for what the dialect layer decides."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from evaljobs import cli
from evaljobs.db.dialects import dialect_of
from evaljobs.db.engine import connect
from evaljobs.windows import latest_fire_time

from tests.dbdata import Label, Prediction, load

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
    assert any(line.startswith("error predictions.predicted_at: type varchar is not a timestamp")
               for line in lines), lines
    assert lines[-1].startswith("warn  pushgateway: none configured")


#: What the dialect layer makes of each engine: the time columns' type as the driver names it,
#: whether the indexes are checked, which server setting is shown, whether the store may live there.
ON_ENGINE = {
    "sqlite": ("declared TIMESTAMP WITH TIME ZONE; its values are UTC text", "ok    predictions: index on",
               "ok    settings: none that evaluations depend on, on sqlite", "ok    results:"),
    "postgresql": ("type timestamptz", "ok    predictions: index on",
                   "ok    work_mem: ", "ok    results:"),
    "duckdb": ("type TIMESTAMP WITH TIME ZONE", "ok    indexes: not applicable on duckdb",
               "ok    settings: none that evaluations depend on, on duckdb", "ok    results:"),
    "hive": ("type TIMESTAMP", "ok    indexes: not applicable on hive",
             "ok    spark.sql.shuffle.partitions: 4 on the server", "error results: the results store cannot live in hive"),
}


def test_doctor_on_every_engine(engine_url, tmp_path, capsys) -> None:
    engine = connect(engine_url, create=True)
    name, spec = engine.dialect.name, dialect_of(engine.dialect.name)
    # One prediction three hours before the latest hourly window's end, labelled ten minutes later.
    at = latest_fire_time("0 * * * *", datetime.now(timezone.utc).replace(microsecond=0)) - timedelta(hours=3)
    load(engine, [Prediction("a", "v1", at, "1")], [Label("a", "1", at + timedelta(minutes=10))])
    with engine.begin() as conn:
        # The same table with its time column as text: a run could not compare windows with it.
        conn.execute(sa.text(f"CREATE VIEW text_times AS SELECT prediction_id, model_name, model_version, "
                             f"CAST(predicted_at AS {spec.text_type}) AS predicted_at, predicted_label FROM predictions"))
    engine.dispose()
    config = tmp_path / "doctor.yaml"
    config.write_text(f"database: '{engine_url}'\njobs:\n"
                      "  - {name: j, model: m, task: multiclass, window: 1d, label_delay: 1h, schedule: '0 * * * *'}\n"
                      "  - {name: t, model: m, task: multiclass, window: 1d, schedule: '0 * * * *', "
                      "tables: {predictions: text_times}}\n")
    code = cli.main(["doctor", "j", "--config", str(config)])
    lines = capsys.readouterr().out.splitlines()
    types, indexes, settings, results = ON_ENGINE[name]
    assert lines[1].startswith(f"ok    predictions.predicted_at: {types}"), lines
    assert lines[2].startswith(f"ok    labels.labeled_at: {types}"), lines
    for wanted in (indexes, settings, results, "ok    label_delay (v1): 1h catches 100.0% of the 1 labels"):
        assert any(line.startswith(wanted) for line in lines), (wanted, lines)
    assert code == (1 if name == "hive" else 0), lines
    assert cli.main(["doctor", "t", "--config", str(config)]) == (1 if name in ("hive", "postgresql", "duckdb") else 0)
    lines = capsys.readouterr().out.splitlines()
    if name == "sqlite":  # text is how SQLite stores instants: its values are checked instead
        assert lines[1].startswith("ok    text_times.predicted_at: declared"), lines
    else:
        assert lines[1].startswith("error text_times.predicted_at: type "), lines
        assert "is not a timestamp" in lines[1] and "fix: store a TIMESTAMP" in lines[1], lines
