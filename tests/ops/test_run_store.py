"""evaljobs run and the results store: what it writes, which window it picks, and what it skips."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from evaljobs import cli
from evaljobs.ops.store import ResultsStore
from evaljobs.db.engine import connect
from evaljobs.windows import latest_fire_time, plan_window

from tests.test_cli import config_file, loaded_sqlite  # noqa: F401 - a fixture
from tests.db.test_pipeline_db import AT


def store_rows(url: str) -> list[dict]:
    engine = connect(url)
    try:
        return ResultsStore(engine).rows()
    finally:
        engine.dispose()


def test_run_stores_its_result_and_dry_run_stores_nothing(capsys, tmp_path, loaded_sqlite, pushgateway) -> None:
    config = config_file(tmp_path, loaded_sqlite, pushgateway.url)
    assert cli.main(["run", "j", "--config", str(config), "--at", AT.isoformat(), "--dry-run"]) == 0
    assert store_rows(loaded_sqlite) == []
    assert cli.main(["run", "j", "--config", str(config), "--at", AT.isoformat()]) == 0
    rows = store_rows(loaded_sqlite)
    assert [(r["row_kind"], r["model_version"], r["origin"], r["push_status"]) for r in rows] == [
        ("job", "", "run", "pushed"), ("version", "v1", "run", "pushed"), ("version", "v2", "run", "pushed")]
    assert all(r["evaluated_at"] == AT and r["pushed_at"] is not None for r in rows)


def test_run_without_at_evaluates_the_window_of_the_latest_fire_time(capsys, tmp_path, loaded_sqlite) -> None:
    config = config_file(tmp_path, loaded_sqlite)  # schedule "0 0 * * *"
    before = datetime.now(timezone.utc)
    assert cli.main(["run", "j", "--config", str(config), "--textfile", str(tmp_path / "m.prom")]) == 0
    [job_row] = [r for r in store_rows(loaded_sqlite) if r["row_kind"] == "job"]
    assert job_row["evaluated_at"] in {latest_fire_time("0 0 * * *", before),
                                       latest_fire_time("0 0 * * *", datetime.now(timezone.utc))}
    assert job_row["push_status"] == "none"  # no Pushgateway configured: stored only


def test_run_skips_a_window_another_process_is_evaluating(capsys, tmp_path, loaded_sqlite) -> None:
    config = config_file(tmp_path, loaded_sqlite, "http://127.0.0.1:9")
    engine = connect(loaded_sqlite)
    held = ResultsStore(engine).claim("j", "m", plan_window(AT, timedelta(days=1), timedelta(days=1)), "schedule",
                                      datetime.now(timezone.utc), replace=False)
    engine.dispose()
    code = cli.main(["run", "j", "--config", str(config), "--at", AT.isoformat()])
    err = capsys.readouterr().err
    assert code == 75  # issue 11: a run that did nothing because of another's claim is not a success
    assert "evaljobs: note: skipped job j window 2026-01-08T00:00:00Z..2026-01-09T00:00:00Z" in err
    assert f"being evaluated by {held.token}" in err
