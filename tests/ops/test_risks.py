"""Risks 3, 5, 7 and 8 of issue 11, against real SQLite, PostgreSQL, DuckDB and a real Pushgateway."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from evaljobs import cli, exposition
from evaljobs.db.engine import connect
from evaljobs.db.source import JobSource
from evaljobs.windows import plan_window

from tests.conftest import ENGINES, is_spark, samples, scrape
from tests.db.test_pipeline_db import AT, evaluate, make_job
from tests.ops.test_run_store import store_rows
from tests.test_cli import config_file, loaded_sqlite  # noqa: F401 - a fixture
from tests.dbdata import PREDICTION_COLUMNS, Label, Prediction, create_table, insert
from tests.db.test_pipeline_db import load_url


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- risk 7: a results store the run's role may not change ----------------------------------------
@pytest.fixture
def limited_role(postgres_url: str) -> Iterator[tuple[str, sa.Engine]]:
    """A login role with no privilege at all (the test grants what it needs), dropped afterwards.
    Yields the role's name and an admin engine on the test's schema."""
    role = f"evaljobs_limited_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_url)
    schema = sa.engine.make_url(postgres_url).query["options"].split("=", 1)[1]
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}'))
    try:
        yield role, admin
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP OWNED BY {role}"))  # its grants; it owns nothing else
            conn.execute(sa.text(f"DROP ROLE {role}"))
        admin.dispose()


def _as_role(url: str, role: str) -> str:
    return str(sa.engine.make_url(url).set(username=role))


RESULTS_TABLES = "evaljobs_results, evaljobs_summaries, evaljobs_schema_version"


@pytest.mark.parametrize("grant", ["SELECT, INSERT, UPDATE, DELETE", "SELECT"])
def test_7_a_role_without_create_uses_existing_results_tables(capsys, tmp_path, postgres_url, pushgateway,
                                                              limited_role, grant) -> None:
    """A role without CREATE on the schema: with read and write privileges on the existing results
    tables it runs and pushes (no DDL once every migration is recorded); with SELECT only, the run
    fails at its claim, naming the results store and the missing privilege, and pushes nothing."""
    role, admin = limited_role
    t = AT - timedelta(days=1, hours=12)
    load_url(postgres_url, [Prediction("a", "v1", t, "1", 0.9), Prediction("b", "v1", t, "0", 0.2)],
             [Label("a", "1", t), Label("b", "0", t)])
    owner = config_file(tmp_path, postgres_url, pushgateway.url)
    earlier = AT - timedelta(days=1)
    assert cli.main(["run", "j", "--config", str(owner), "--at", earlier.isoformat()]) == 0  # creates the tables
    capsys.readouterr()
    with admin.begin() as conn:
        conn.execute(sa.text(f"GRANT SELECT ON predictions, labels TO {role}"))
        conn.execute(sa.text(f"GRANT {grant} ON {RESULTS_TABLES} TO {role}"))
        assert not conn.execute(sa.text("SELECT has_schema_privilege(:r, current_schema(), 'CREATE')"),
                                {"r": role}).scalar()
    limited = tmp_path / "limited"
    limited.mkdir()
    config = config_file(limited, _as_role(postgres_url, role), pushgateway.url)
    code, _, err = run(capsys, "run", "j", "--config", str(config), "--at", AT.isoformat())
    window_ends = {s.value for s in samples(f"{pushgateway.url}/metrics", "evaljobs_window_end_timestamp_seconds")}
    if grant == "SELECT":
        assert code == 1, err
        assert err.count("\n") == 1 and "results store: claiming" in err and "permission denied" in err, err
        assert "grant the role SELECT, INSERT, UPDATE and DELETE on evaljobs_results and evaljobs_summaries" in err, err
        assert "creating or upgrading its tables" not in err, err  # no DDL was tried
        assert window_ends == {(earlier - timedelta(days=1)).timestamp()}  # the owner's push, nothing newer
        assert {r["evaluated_at"] for r in store_rows(postgres_url)} == {earlier}
    else:
        assert code == 0, err
        assert window_ends == {(AT - timedelta(days=1)).timestamp()}
        assert {r["evaluated_at"] for r in store_rows(postgres_url) if r["row_kind"] == "job"} == {earlier, AT}


# ---- risk 5: SQLite timestamps, every row of a window --------------------------------------------
@pytest.mark.parametrize("column, stored", [
    ("predicted_at", "2026-01-08 12:00:00+02:00"),   # an offset
    ("predicted_at", "2026-01-08T12:00:00"),         # a 'T'
    ("predicted_at", "2026-01-08 12:00:00.1234567"),  # more than microseconds
    ("labeled_at", "2026-01-09 06:00:00Z"),
])
def test_5_a_sqlite_timestamp_in_another_form_in_the_middle_of_a_table_is_refused(capsys, tmp_path, sqlite_url,
                                                                                column, stored) -> None:
    """The earliest and latest timestamps are well formed; one row in the middle is not."""
    window = plan_window(AT, timedelta(days=1), timedelta(days=1))
    # a day either side, so that neither the window's nor the table's extremes are the bad row
    rows = [Prediction(f"p{i}", "v1", window.start + timedelta(hours=i), str(i % 2), 0.5) for i in range(-24, 48)]
    labels = [Label(f"p{i}", str(i % 2), window.end + timedelta(hours=i / 2)) for i in range(-24, 48)]
    load_url(sqlite_url, rows, labels)
    engine = connect(sqlite_url)
    with engine.begin() as conn:
        if column == "predicted_at":
            conn.execute(sa.text("UPDATE predictions SET predicted_at = :v WHERE prediction_id = 'p12'"), {"v": stored})
        else:
            conn.execute(sa.text("UPDATE labels SET labeled_at = :v WHERE prediction_id = 'p12'"), {"v": stored})
        first, last = conn.execute(sa.text(f"SELECT MIN({column}), MAX({column}) FROM "
                                           f"{'predictions' if column == 'predicted_at' else 'labels'}")).one()
    engine.dispose()
    assert stored not in (first, last)  # not at the extremes, which the schema check reads
    config = config_file(tmp_path, sqlite_url)
    code, out, err = run(capsys, "run", "j", "--config", str(config), "--at", AT.isoformat(),
                         "--textfile", str(tmp_path / "m.prom"))
    assert code == 1, err
    [job_row] = store_rows(sqlite_url)
    assert job_row["status"] == "failed" and job_row["claimed_by"] is None
    assert not (tmp_path / "m.prom").exists()
    table = "predictions" if column == "predicted_at" else "labels"
    assert err.count("\n") == 1 and f"{table}.{column} holds 1 value(s) in the window like {stored!r}" in err, err
    assert "UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]'" in err and "datetime(...)" in err
    assert out == ""  # no result printed


def test_5_well_formed_sqlite_timestamps_pass_the_row_check(sqlite_url) -> None:
    """Whole seconds and 1-6 fractional digits, as SQLAlchemy and Python's str(datetime) write them."""
    window = plan_window(AT, timedelta(days=1), timedelta(days=1))
    rows = [Prediction(f"p{i}", "v1", window.start + timedelta(hours=i, microseconds=i * 1001), "1", 0.5)
            for i in range(6)]
    load_url(sqlite_url, rows, [Label("p0", "1", window.end)])
    engine = connect(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE predictions SET predicted_at = '2026-01-08 05:00:00.5' WHERE prediction_id = 'p5'"))
    engine.dispose()
    source = JobSource(connect(sqlite_url), make_job())
    source.check_window_timestamps(window)  # raises on a bad form
    assert evaluate(sqlite_url, make_job()).versions[0].window_predictions == 6


# ---- risk 8: rows that were silently ignored -----------------------------------------------------


def _load_loose(url: str, predictions: list[Prediction], labels: list[tuple[str, str | None, object]]) -> None:
    """The reference tables without their constraints (no primary key, a nullable label): a
    user's own tables, which may hold NULL labels and duplicate predictions."""
    engine = connect(url, create=True)
    try:
        create_table(engine, "predictions", {
            "prediction_id": "VARCHAR(64)", "model_name": "VARCHAR(200)", "model_version": "VARCHAR(200)",
            "predicted_at": "TIMESTAMP WITH TIME ZONE", "predicted_label": "VARCHAR(200)",
            "score": "DOUBLE PRECISION", "latency_seconds": "DOUBLE PRECISION"})
        create_table(engine, "labels", {"prediction_id": "VARCHAR(64)", "label": "VARCHAR(200)",
                                        "labeled_at": "TIMESTAMP WITH TIME ZONE"})
        insert(engine, "predictions", [{c: getattr(p, c) for c in PREDICTION_COLUMNS} for p in predictions])
        insert(engine, "labels", [{"prediction_id": i, "label": v, "labeled_at": t} for i, v, t in labels])
    finally:
        engine.dispose()


def _ignored_rows_data() -> tuple[list[Prediction], list[tuple[str, str | None, object]]]:
    window = plan_window(AT, timedelta(days=1), timedelta(days=1))
    t, arrived = window.start + timedelta(hours=1), window.end + timedelta(hours=1)
    predictions = [
        Prediction("a", "v1", t, "1", 0.9), Prediction("b", "v1", t, "0", 0.2),
        Prediction("c", "v1", t, "1", 0.8), Prediction("d", "v1", t, "0", 0.4),
        # 'e' twice for v1 with different classes; 'f' twice with the same class (not a conflict)
        Prediction("e", "v1", t, "1", 0.7), Prediction("e", "v1", t + timedelta(minutes=5), "0", 0.3),
        Prediction("f", "v1", t, "1", 0.6), Prediction("f", "v1", t, "1", 0.6),
        # v2 scores the same request ids; 'a' twice with different classes
        Prediction("a", "v2", t, "1", 0.9), Prediction("a", "v2", t, "0", 0.1), Prediction("b", "v2", t, "0", 0.2),
    ]
    labels = [("a", "1", arrived), ("b", "0", arrived), ("c", None, arrived),    # c: the only label is NULL
              ("d", "0", arrived), ("d", None, arrived + timedelta(hours=1)),    # d: the latest label is NULL
              ("e", "1", arrived), ("f", "1", arrived),
              ("x", None, window.start)]  # NULL, but arrived before the window's label arrivals: not counted
    return predictions, labels


@pytest.mark.parametrize("engine_url", ENGINES, indirect=True)
def test_8_null_labels_and_conflicting_duplicates_are_counted(engine_url: str) -> None:
    predictions, labels = _ignored_rows_data()
    _load_loose(engine_url, predictions, labels)
    job = make_job()
    result = evaluate(engine_url, job)
    assert result.null_labels == 2  # c's and d's latest; x arrived before [labels_as_of - window, labels_as_of)
    assert result.conflicting_predictions == 2  # (e, v1) and (a, v2); (f, v1) repeats one class
    warnings = [str(w) for w in result.warnings]
    assert len(warnings) == 2 and not result.partial, warnings
    assert "2 row(s) of 'labels' that arrived in the last window length have a NULL 'label'" in warnings[0]
    assert ("version 'v1': 1 (e.g. prediction_id 'e'), version 'v2': 1 (e.g. prediction_id 'a')"
            in warnings[1]), warnings[1]
    # NULL latest labels count as not labelled: c and d are unlabelled predictions of v1.
    [v1, _] = result.versions
    assert v1.window_predictions - v1.labeled_predictions >= 2
    assert ("1", "1") in v1.confusion and all(a is not None for a, _ in v1.confusion)


@pytest.mark.parametrize("engine_url", ENGINES, indirect=True)
def test_8_clean_data_counts_nothing(engine_url: str) -> None:
    window = plan_window(AT, timedelta(days=1), timedelta(days=1))
    t = window.start + timedelta(hours=1)
    load_url(engine_url, [Prediction("a", "v1", t, "1", 0.9), Prediction("a", "v2", t, "0", 0.9)],
             [Label("a", "1", window.end)])
    result = evaluate(engine_url, make_job())
    assert (result.null_labels, result.conflicting_predictions, result.warnings) == (0, 0, [])
    # The reference schema's primary key (prediction_id, model_version) rules conflicts out, so the
    # predictions are not grouped again; the loose tables of the test above declare nothing.
    engine = connect(engine_url)
    source = JobSource(engine, make_job())
    source.check_schema()
    assert source.predictions_unique is not is_spark(engine_url)  # Spark declares no keys: it always groups
    engine.dispose()
    _load_loose(engine_url, *_ignored_rows_data())
    engine = connect(engine_url)
    source = JobSource(engine, make_job())
    source.check_schema()
    assert not source.predictions_unique
    engine.dispose()


def test_8_regression_compares_the_predicted_value(sqlite_url: str) -> None:
    window = plan_window(AT, timedelta(days=1), timedelta(days=1))
    t = window.start + timedelta(hours=1)
    _load_loose(sqlite_url, [Prediction("a", "v1", t, "1.5"), Prediction("a", "v1", t, "2.5"),
                             Prediction("b", "v1", t, "3"), Prediction("b", "v1", t, "3.0")],
                [("a", "2", window.end), ("b", None, window.end)])
    result = evaluate(sqlite_url, make_job("regression"))
    assert (result.null_labels, result.conflicting_predictions) == (1, 1)  # 3 and 3.0 are one value


def test_8_the_cli_warns_once_per_kind_and_pushes_the_counts(capsys, tmp_path, sqlite_url, pushgateway) -> None:
    predictions, labels = _ignored_rows_data()
    _load_loose(sqlite_url, predictions, labels)
    config = config_file(tmp_path, sqlite_url, pushgateway.url)
    code, _, err = run(capsys, "run", "j", "--config", str(config), "--at", AT.isoformat())
    assert code == 0, err  # every number was computed: a warning, not a partial result
    warnings = err.splitlines()
    assert len(warnings) == 2 and all(w.startswith("evaljobs: warning: job 'j': ") for w in warnings), err
    assert "NULL 'label'" in warnings[0] and "predict different values" in warnings[1]
    assert [s.value for s in samples(f"{pushgateway.url}/metrics", "evaljobs_null_labels")] == [2]
    assert [s.value for s in samples(f"{pushgateway.url}/metrics", "evaljobs_conflicting_predictions")] == [2]
    [job_row] = [r for r in store_rows(sqlite_url) if r["row_kind"] == "job"]
    assert job_row["status"] == "ok"
    stored = json.loads(job_row["result"])  # the job row's record keeps the counts and the warnings
    assert (stored["null_labels"], stored["conflicting_predictions"], len(stored["warnings"])) == (2, 2, 2)


# ---- risk 3: more classes than max_classes -------------------------------------------------------
def _many_classes(classes: int, rows: int, seed: int = 7) -> tuple[list[Prediction], list[Label]]:
    """Classes c00, c01, ... of falling frequency (a long tail); about 70% of predictions right,
    90% labelled, plus unlabelled ones."""
    rng = random.Random(seed)
    window = plan_window(AT, timedelta(days=1), timedelta(days=1))
    names = [f"c{i:03d}" for i in range(classes)]
    weights = [1 / (i + 1) for i in range(classes)]
    predictions, labels = [], []
    for i in range(rows):
        actual = rng.choices(names, weights)[0]
        guess = actual if rng.random() < 0.7 else rng.choices(names, weights)[0]
        t = window.start + timedelta(seconds=rng.randrange(86400))
        predictions.append(Prediction(f"p{i}", "v1", t, guess))
        if rng.random() < 0.9:
            labels.append(Label(f"p{i}", actual, window.end))
    return predictions, labels


@pytest.mark.parametrize("engine_url", ENGINES, indirect=True)
def test_3_classes_beyond_max_classes_fold_into_other_and_the_averages_stay_exact(engine_url: str) -> None:
    from sklearn import metrics as skm

    predictions, labels = _many_classes(classes=14, rows=600)
    load_url(engine_url, predictions, labels)
    job = make_job("multiclass", max_classes=5)
    result = evaluate(engine_url, job)
    [v] = result.versions
    truth = {label.prediction_id: label.label for label in labels}
    y_true = [truth[p.prediction_id] for p in predictions if p.prediction_id in truth]
    y_pred = [p.predicted_label for p in predictions if p.prediction_id in truth]
    classes = sorted(set(y_true) | set(y_pred))
    assert len(classes) == 14
    # Accuracy and the averages are over all 14 classes, as scikit-learn's.
    m = v.metrics
    assert m.accuracy == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-12)
    for average, got in (("macro", m.macro), ("weighted", m.weighted)):
        p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
        assert (got.precision, got.recall, got.f1) == pytest.approx((p, r, f), abs=1e-12), average
    # The 5 classes with the most volume (predictions of them + labels of them) keep exact scores.
    volume = {c: y_pred.count(c) + y_true.count(c) for c in classes}
    volume = {c: n + sum(1 for p in predictions if p.prediction_id not in truth and p.predicted_label == c)
              for c, n in volume.items()}
    kept = sorted(sorted(classes, key=lambda c: (-volume[c], c))[:5])
    fold = v.class_fold
    assert fold is not None and fold.kept == tuple(kept) and (fold.classes, fold.folded) == (14, 9)
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=classes, zero_division=0)
    exact = {c: (p[i], r[i], f[i], s[i]) for i, c in enumerate(classes)}
    for c in kept:
        got = fold.per_class[c]
        assert (got.precision, got.recall, got.f1, got.support) == pytest.approx(exact[c], abs=1e-12)
    rest = [c for c in classes if c not in kept]
    other = fold.per_class["(other)"]
    assert other.precision == pytest.approx(sum(exact[c][0] for c in rest) / 9, abs=1e-12)
    assert other.f1 == pytest.approx(sum(exact[c][2] for c in rest) / 9, abs=1e-12)
    assert other.support == sum(exact[c][3] for c in rest)
    # The folded matrix is scikit-learn's, its folded rows and columns summed.
    matrix = skm.confusion_matrix(y_true, y_pred, labels=classes)
    shown = kept + ["(other)"]
    fold_of = {c: c if c in kept else "(other)" for c in classes}
    want = {(a, b): 0 for a in shown for b in shown}
    for i, a in enumerate(classes):
        for j, b in enumerate(classes):
            want[(fold_of[a], fold_of[b])] += int(matrix[i, j])
    assert {k: n for k, n in want.items() if n} == fold.confusion
    # What is pushed: (5 + 1)^2 confusion series and 5 + 1 per class, not 14^2 and 14.
    families = {f.name: f for f in exposition.version_families(v)}
    assert len(families["model_confusion_predictions"].samples) == 36
    assert {s.labels["class"] for s in families["model_f1_ratio"].samples} == set(shown)
    assert families["model_folded_classes"].samples[0].value == 9
    assert families["model_macro_f1_ratio"].samples[0].value == pytest.approx(m.macro.f1)
    # One warning line, and the result is not partial.
    assert not result.partial
    [warning] = [str(w) for w in result.warnings]
    assert "14 classes, more than max_classes 5: the 9 with the least volume in the window are summed into " \
           "class \"(other)\"" in warning and "over all 14 classes" in warning


def test_3_a_version_at_max_classes_is_not_folded(sqlite_url: str) -> None:
    predictions, labels = _many_classes(classes=5, rows=300)
    load_url(sqlite_url, predictions, labels)
    result = evaluate(sqlite_url, make_job("multiclass", max_classes=5))
    [v] = result.versions
    assert v.class_fold is None and result.warnings == []
    families = {f.name: f for f in exposition.version_families(v)}
    assert families["model_folded_classes"].samples[0].value == 0
    assert len(families["model_confusion_predictions"].samples) == 25


def test_3_three_hundred_classes_push_a_bounded_number_of_series(capsys, tmp_path, sqlite_url, pushgateway) -> None:
    """The issue's case: 300 classes made 90,945 series per version and a 5.7 MB stored row."""
    predictions, labels = _many_classes(classes=300, rows=6000)
    load_url(sqlite_url, predictions, labels)
    config = config_file(tmp_path, sqlite_url, pushgateway.url)
    config.write_text(config.read_text().replace("task: binary\n    positive_label: 1\n", "task: multiclass\n"))
    code, _, err = run(capsys, "run", "j", "--config", str(config), "--at", AT.isoformat())
    assert code == 0, err
    [warning] = err.splitlines()
    assert "max_classes 50" in warning and "summed into class \"(other)\"" in warning, err
    families = scrape(f"{pushgateway.url}/metrics")
    series = sum(len(f.samples) for f in families if f.name in {
        "model_confusion_predictions", "model_precision_ratio", "model_recall_ratio", "model_f1_ratio"})
    assert series == 51 * 51 + 3 * 51  # 2,754
    [row] = [r for r in store_rows(sqlite_url) if r["row_kind"] == "version"]
    record = json.loads(row["result"])
    assert len(record["per_class"]) == 51 and record["classes"] > 290  # the seeded data has 299 of the 300
    assert record["folded_classes"] == record["classes"] - 50 and len(record["confusion"]) <= 51 * 51
    assert len(row["result"]) < 200_000, len(row["result"])


def test_8_the_scheduler_logs_the_warnings(caplog, tmp_path, sqlite_url) -> None:
    """`schedule` has no stderr summary: the same warning lines go to its log."""
    import logging

    from evaljobs.config import load_config
    from evaljobs.ops.runner import Runner
    from evaljobs.ops.runs import JobRuns
    from evaljobs.ops.scheduler import Scheduler
    from evaljobs.ops.store import ResultsStore

    predictions, labels = _ignored_rows_data()
    _load_loose(sqlite_url, predictions, labels)
    config = load_config(config_file(tmp_path, sqlite_url))
    with Runner(config) as runner:
        runs = JobRuns(runner, ResultsStore(runner.engine), sink=None)
        scheduler = Scheduler(config, runs, clock=lambda: AT)
        with caplog.at_level(logging.INFO, logger="evaljobs"):
            scheduler.run_due(config.job("j"), AT, None)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "NULL 'label'" in warnings[0] and "predict different values" in warnings[1], warnings
