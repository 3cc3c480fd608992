"""The evaljobs command: exit codes, one-line errors, outputs, and no leaked credentials."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from evaljobs import cli

from tests.conftest import samples
from tests.dbdata import Label, Prediction
from tests.db.test_pipeline_db import AT, load_url

JOB = """  - name: {name}
    model: m
    task: binary
    positive_label: 1
    window: 1d
    label_delay: 1d
    schedule: "0 0 * * *"
"""


def config_file(tmp_path: Path, database: str, pushgateway: str | None = None, jobs=("j",), extra: str = "") -> Path:
    path = tmp_path / "schedules.yaml"
    text = f"database: {database}\n" + (f"pushgateway: {pushgateway}\n" if pushgateway else "") + "jobs:\n"
    text += "".join(JOB.format(name=name) for name in jobs) + extra
    path.write_text(text)
    return path


@pytest.fixture
def loaded_sqlite(sqlite_url: str) -> str:
    t = AT - timedelta(days=1, hours=12)
    load_url(sqlite_url, [Prediction("a", "v1", t, "1", 0.9), Prediction("b", "v1", t, "0", 0.3),
                          Prediction("c", "v2", t, "1", 0.6)],
             [Label("a", "1", t), Label("b", "1", t)])
    return sqlite_url


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_dry_run_prints_a_table_and_pushes_nothing(capsys, tmp_path, loaded_sqlite, pushgateway) -> None:
    config = config_file(tmp_path, loaded_sqlite, pushgateway.url)
    code, out, err = run(capsys, "run", "j", "--config", str(config), "--at", AT.isoformat(), "--dry-run")
    assert code == 0, err
    assert "m/v1" in out and "m/v2" in out and "0.500" in out
    assert samples(f"{pushgateway.url}/metrics", "model_accuracy_ratio") == []


def test_run_pushes_and_json_output(capsys, tmp_path, loaded_sqlite, pushgateway) -> None:
    config = config_file(tmp_path, loaded_sqlite, pushgateway.url)
    code, out, err = run(capsys, "run", "--all", "--config", str(config), "--at", AT.isoformat(), "--output", "json")
    assert code == 0, err
    document = json.loads(out)
    [job] = document["jobs"]
    v1 = next(v for v in job["versions"] if v["model_version"] == "v1")
    assert (v1["window_predictions"], v1["labeled_predictions"], v1["accuracy"]) == (2, 2, 0.5)
    assert document["pushgateway"] == pushgateway.url
    pushed = samples(f"{pushgateway.url}/metrics", "model_accuracy_ratio")
    assert [(s.labels["model_version"], s.value) for s in pushed] == [("v1", 0.5)]


def test_textfile_output(capsys, tmp_path, loaded_sqlite) -> None:
    config = config_file(tmp_path, loaded_sqlite)
    target = tmp_path / "collector" / "evaljobs.prom"
    target.parent.mkdir()  # evaljobs no longer creates it (issue 11: a typo'd path is an error)
    code, _, err = run(capsys, "run", "j", "--config", str(config), "--at", AT.isoformat(), "--textfile", str(target))
    assert code == 0, err
    text = target.read_text()
    assert 'model_accuracy_ratio{job="j",model="m",model_version="v1"} 0.5' in text
    assert text.count("# TYPE model_accuracy_ratio gauge") == 1


def test_no_pushgateway_configured_is_a_usage_error(capsys, tmp_path, loaded_sqlite) -> None:
    config = config_file(tmp_path, loaded_sqlite)
    code, _, err = run(capsys, "run", "j", "--config", str(config))
    assert code == 2
    assert err.strip() == ("evaljobs: error: no Pushgateway configured; set pushgateway: in the config, "
                           "pass --textfile PATH, or use --dry-run")


@pytest.mark.parametrize("argv_tail, exit_code, message", [
    (["run", "nope"], 2, "unknown job 'nope'; jobs in this config: j"),
    (["run"], 2, "which job? give a job name or --all"),
    (["run", "j", "--all"], 2, "give a job name or --all, not both"),
])
def test_usage_errors(capsys, tmp_path, loaded_sqlite, argv_tail, exit_code, message) -> None:
    config = config_file(tmp_path, loaded_sqlite, "http://127.0.0.1:9")
    code, _, err = run(capsys, *argv_tail, "--config", str(config))
    assert code == exit_code
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_config_and_missing_file(capsys, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("jobs:\n  - name: j\n    model: m\n    task: binary\n    window: 1d\n    schedule: '* * * * *'\n")
    code, _, err = run(capsys, "run", "j", "--config", str(bad))
    assert code == 2 and "bad.yaml: jobs[0] (j): a binary job needs positive_label" in err
    code, _, err = run(capsys, "run", "j", "--config", str(tmp_path / "absent.yaml"))
    assert code == 2 and "not found; pass --config PATH" in err


def test_bad_timestamp_is_a_usage_error(capsys, tmp_path) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "j", "--at", "yesterday"])
    assert info.value.code == 2
    assert "invalid timestamp 'yesterday'" in capsys.readouterr().err


def test_unreachable_database_hides_the_password(capsys, tmp_path) -> None:
    config = config_file(tmp_path, "postgresql+psycopg://alice:topsecret@127.0.0.1:9/db", "http://127.0.0.1:9")
    code, _, err = run(capsys, "run", "j", "--config", str(config))
    assert code == 1
    assert err.startswith("evaljobs: error: cannot connect to database postgresql+psycopg://alice:***@127.0.0.1:9/db")
    assert "topsecret" not in err and err.count("\n") == 1


def test_unreachable_pushgateway_still_prints_results(capsys, tmp_path, loaded_sqlite) -> None:
    config = config_file(tmp_path, loaded_sqlite, "http://u:pw123@127.0.0.1:9")
    code, out, err = run(capsys, "run", "j", "--config", str(config), "--at", AT.isoformat())
    assert code == 1
    assert "m/v1" in out  # the numbers are not lost: they were printed before the push failed
    assert "cannot reach Pushgateway http://127.0.0.1:9" in err and "pw123" not in err


def test_missing_column_fails_one_job_and_the_others_still_run(capsys, tmp_path, loaded_sqlite) -> None:
    extra = JOB.format(name="broken") + "    columns: {predicted_label: nope}\n"
    config = config_file(tmp_path, loaded_sqlite, extra=extra)
    code, out, err = run(capsys, "run", "--all", "--config", str(config), "--at", AT.isoformat(), "--dry-run")
    assert code == 1
    assert "m/v1" in out
    assert "job 'broken': column 'nope' not found in 'predictions'" in err


def test_console_script_end_to_end(tmp_path, loaded_sqlite) -> None:
    """The installed entry point, as cron would run it."""
    config = config_file(tmp_path, loaded_sqlite)
    script = Path(sys.executable).parent / "evaljobs"
    done = subprocess.run([str(script), "run", "j", "--config", str(config), "--at", AT.isoformat(), "--dry-run"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "m/v2" in done.stdout
    missing = subprocess.run([str(script), "run", "j", "--config", str(tmp_path / "none.yaml")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_missing_sqlite_file_is_not_silently_created(capsys, tmp_path) -> None:
    config = config_file(tmp_path, f"sqlite:///{tmp_path / 'typo.db'}", "http://127.0.0.1:9")
    code, _, err = run(capsys, "run", "j", "--config", str(config))
    assert code == 1 and "SQLite database file" in err and "does not exist" in err
    assert not (tmp_path / "typo.db").exists()


def test_unknown_driver_is_explained(capsys, tmp_path) -> None:
    config = config_file(tmp_path, "nosuchdb://h/x", "http://127.0.0.1:9")
    code, _, err = run(capsys, "run", "j", "--config", str(config))
    assert code == 1 and "no SQLAlchemy dialect for 'nosuchdb'" in err
