"""Only aggregates leave the database: the number of rows any query returns does not grow with the table."""

from __future__ import annotations

import random
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from evaljobs.ops.runner import evaluate_job
from evaljobs.db.engine import connect
from evaljobs.db.source import JobSource
from evaljobs.windows import plan_window

from tests.dbdata import Label, Prediction, load
from tests.db.test_pipeline_db import AT, ORIGIN, make_job


def rows_returned_by_evaluation(url: str, n: int) -> list[int]:
    """Evaluate a binary job over n predictions; the row count of every statement's result."""
    rng = random.Random(n)
    predictions = [Prediction(f"p{i}", rng.choice(["v1", "v2"]), ORIGIN + timedelta(seconds=rng.randrange(172800)),
                              rng.choice("01"), rng.random()) for i in range(n)]
    labels = [Label(p.prediction_id, rng.choice("01"), p.predicted_at + timedelta(hours=1)) for p in predictions]
    engine = connect(url, create=True)
    load(engine, predictions, labels)
    returned: list[int] = []

    @sa.event.listens_for(engine, "after_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
        # psycopg knows how many rows a query produced as soon as it has executed. The catalog
        # reads of the schema check (keys of the labels table) return the table's layout, not data.
        # Planner settings (SET LOCAL, see Dialect.query_settings) return no rows at all.
        if "pg_catalog" not in statement and cursor.description is not None:
            returned.append(cursor.rowcount)

    job = make_job()
    result = evaluate_job(JobSource(engine, job), plan_window(AT, job.window, job.label_delay))
    engine.dispose()
    assert sum(v.window_predictions for v in result.versions) > n / 3
    return returned


def test_result_rows_do_not_grow_with_the_table(postgres_url: str) -> None:
    small = rows_returned_by_evaluation(postgres_url, 200)
    large = rows_returned_by_evaluation(postgres_url, 20_000)
    assert len(small) == len(large)
    # The core statement: confusion cells (2 versions x 2 x 2, which also carry the label-delay
    # and latency counts), 2 rank sums, 2 totals, 1 orphan count; then the ignored rows
    # (sql/ignored_rows.sql): the NULL-label count (no conflicts: the reference schema declares
    # predictions unique).
    assert sum(large) == sum(small) == 13 + 1, (small, large)


def test_evaljobs_never_imports_pandas() -> None:
    code = ("import sys, evaljobs.cli, evaljobs.ops.runner, evaljobs.ops.runs, evaljobs.sinks.pushgateway, "
            "evaljobs.sinks.textfile; sys.exit('pandas' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_wheel_ships_the_sql_files(tmp_path: Path) -> None:
    """A non-editable install must find sql/: the wheel carries it as evaljobs/sql/."""
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(root)], check=True, capture_output=True)
    [wheel] = tmp_path.glob("evaljobs-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for sql in (root / "sql").rglob("*.sql"):
        assert f"evaljobs/sql/{sql.relative_to(root / 'sql').as_posix()}" in names
    # Installed as a plain (non-editable) package, it reads its SQL from inside itself.
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    probe = ("import evaljobs.db.sqlfiles as s; d = s.sql_directory(); "
             "assert str(d).startswith(%r), d; assert 'SELECT' in s.read_sql('window_aggregates')" % str(target))
    subprocess.run([sys.executable, "-c", probe], check=True, cwd=tmp_path, env={"PYTHONPATH": str(target)})


def test_the_cli_starts_without_numpy_or_scipy() -> None:
    """scipy.stats alone costs ~45 MB and seconds of start-up: a core job must not load it, and
    numpy and scipy.special load only when drift (or an estimate) is computed."""
    code = ("import sys, evaljobs.cli, evaljobs.ops.runner; "
            "sys.exit(10 if {'numpy', 'scipy', 'scipy.stats'} & set(sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
