"""The whole SQL path on SQLite and PostgreSQL, checked against scikit-learn on the same rows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from evaljobs.config import Job
from evaljobs.errors import SourceError
from evaljobs.ops.runner import evaluate_job
from evaljobs.records import JobResult
from evaljobs.db.dialects import bind_time
from evaljobs.db.engine import connect
from evaljobs.db import sqlfiles
from evaljobs.db.source import JobSource
from evaljobs.windows import plan_window

from tests.conftest import ENGINES, examples
from tests.dbdata import Label, Prediction, for_each_data_set, load, reset

AT = datetime(2026, 1, 10, tzinfo=timezone.utc)
ORIGIN = datetime(2026, 1, 7, 12, tzinfo=timezone.utc)
TOL = 1e-9


def make_job(task: str = "binary", **overrides) -> Job:
    fields = {"name": "j", "model": "m", "task": task, "window": "1d", "label_delay": "1d",
              "schedule": "0 0 * * *"}
    if task == "binary":
        fields["positive_label"] = "1"
    fields.update(overrides)
    return Job.model_validate(fields)


def evaluate(url: str, job: Job, at: datetime = AT) -> JobResult:
    engine = connect(url, create=True)
    try:
        return evaluate_job(JobSource(engine, job), plan_window(at, job.window, job.label_delay))
    finally:
        engine.dispose()


# ---- the reference computation, in plain Python on the rows -------------------------------
def expected(job: Job, predictions: list[Prediction], labels: list[Label], at: datetime = AT) -> dict:
    window = plan_window(at, job.window, job.label_delay)
    latest: dict[str, Label] = {}
    for label in labels:
        if label.labeled_at >= window.labels_as_of:
            continue
        best = latest.get(label.prediction_id)
        if best is None or (label.labeled_at, label.label) > (best.labeled_at, best.label):
            latest[label.prediction_id] = label
    out: dict[str, dict] = {}
    for version in sorted({p.model_version for p in predictions}):
        rows = [p for p in predictions if p.model_version == version and window.start <= p.predicted_at < window.end]
        if not rows:
            continue
        labelled = [(latest[p.prediction_id].label, p) for p in rows if p.prediction_id in latest]
        y_true = [t for t, _ in labelled]
        y_pred = [p.predicted_label for _, p in labelled]
        entry = {
            "window": len(rows),
            "labelled": len(labelled),
            "total": sum(1 for p in predictions if p.model_version == version and p.predicted_at < window.end),
        }
        if labelled:
            classes = sorted(set(y_true) | set(y_pred))
            p_, r_, f_, s_ = skm.precision_recall_fscore_support(y_true, y_pred, labels=classes, zero_division=0)
            entry["accuracy"] = skm.accuracy_score(y_true, y_pred)
            entry["per_class"] = {c: (p_[i], r_[i], f_[i], s_[i]) for i, c in enumerate(classes)}
            for average in ("macro", "weighted"):
                entry[average] = skm.precision_recall_fscore_support(
                    y_true, y_pred, labels=classes, average=average, zero_division=0)[:3]
            scored = [(t == job.positive_label, p.score) for t, p in labelled if p.score is not None]
            if job.task == "binary" and scored:
                y = [int(t) for t, _ in scored]
                s = [sc for _, sc in scored]
                entry["log_loss"] = skm.log_loss(y, s, labels=[0, 1])
                entry["brier"] = skm.brier_score_loss(y, s, pos_label=1)
                entry["auc"] = skm.roc_auc_score(y, s) if len(set(y)) == 2 else None
        out[version] = entry
    ids = {p.prediction_id for p in predictions}
    arrived_from = window.labels_as_of - window.length
    orphans = sum(1 for lab in labels if lab.prediction_id not in ids and arrived_from <= lab.labeled_at < window.labels_as_of)
    return {"versions": out, "orphans": orphans}


def assert_matches(result: JobResult, want: dict) -> None:
    assert result.orphan_labels == want["orphans"]
    assert [v.model_version for v in result.versions] == sorted(want["versions"])
    for v in result.versions:
        exp = want["versions"][v.model_version]
        assert (v.window_predictions, v.labeled_predictions, v.predictions_total) == (exp["window"], exp["labelled"], exp["total"])
        assert v.label_coverage == pytest.approx(exp["labelled"] / exp["window"], abs=TOL)
        if not exp["labelled"]:
            assert v.metrics is None
            continue
        m = v.metrics
        assert m.accuracy == pytest.approx(exp["accuracy"], abs=TOL)
        assert set(m.per_class) == set(exp["per_class"])
        for c, (p, r, f, s) in exp["per_class"].items():
            got = m.per_class[c]
            assert (got.precision, got.recall, got.f1, got.support) == pytest.approx((p, r, f, s), abs=TOL)
        for average in ("macro", "weighted"):
            got = getattr(m, average)
            assert (got.precision, got.recall, got.f1) == pytest.approx(exp[average], abs=TOL)
        if "log_loss" in exp:
            assert v.scores.log_loss == pytest.approx(exp["log_loss"], abs=TOL)
            assert v.scores.brier_score == pytest.approx(exp["brier"], abs=TOL)
            if exp["auc"] is None:
                assert v.scores.roc_auc is None
            else:
                assert v.scores.roc_auc == pytest.approx(exp["auc"], abs=TOL)


# ---- random data sets ---------------------------------------------------------------------
@st.composite
def data_sets(draw, task: str):
    classes = ["0", "1"] if task == "binary" else ["cat", "dog", "eel", "fox"]
    n = draw(st.integers(1, 60))
    predictions, labels = [], []
    for i in range(n):
        predicted_at = ORIGIN + timedelta(minutes=draw(st.integers(0, 48 * 60)))
        score = draw(st.one_of(st.none(), st.sampled_from([0.0, 0.05, 0.3, 0.5, 0.7, 0.95, 1.0]),
                               st.floats(0, 1)))
        predictions.append(Prediction(
            prediction_id=f"p{i}",
            model_version=draw(st.sampled_from(["v1", "v2", "v 3/beta"])),
            predicted_at=predicted_at,
            predicted_label=draw(st.sampled_from(classes)),
            score=score if task == "binary" else None,
        ))
        for _ in range(draw(st.integers(0, 3))):
            labels.append(Label(f"p{i}", draw(st.sampled_from(classes)),
                                predicted_at + timedelta(hours=draw(st.integers(0, 72)))))
    for j in range(draw(st.integers(0, 3))):
        labels.append(Label(f"ghost{j}", classes[0], AT - timedelta(hours=draw(st.integers(0, 40)))))
    return predictions, labels


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_random_data_equals_sklearn(engine_url: str, task: str) -> None:
    job = make_job(task)
    for_each_data_set(engine_url, job, AT, data_sets(task),
                      lambda result, predictions, labels, *_: assert_matches(result, expected(job, predictions, labels)),
                      examples=examples(engine_url, 25))


@pytest.mark.parametrize("task", ["binary", "multiclass"])
# Spark has no unique keys to declare (it always ranks, as the engine matrix's other tests check).
@pytest.mark.parametrize("engine_url", [engine for engine in ENGINES if engine != "spark"], indirect=True)
def test_declared_unique_labels_skip_the_ranking_and_equal_sklearn(engine_url: str, task: str) -> None:
    """With a unique index on labels.prediction_id the latest-label ranking is left out of the SQL
    (one join, no sort); the numbers stay those of scikit-learn, shadow versions included."""
    job = make_job(task)
    engine = connect(engine_url, create=True)

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data_sets(task))
    def check(data):
        predictions, labels = data
        one_each = list({label.prediction_id: label for label in labels}.values())
        # A shadow version scores the same request: it shares the prediction id and its label.
        shadow = [Prediction(p.prediction_id, "shadow", p.predicted_at, p.predicted_label, p.score)
                  for p in predictions[:3]]
        reset(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE UNIQUE INDEX labels_one_per_prediction ON labels (prediction_id)"))
        load(engine, predictions + shadow, one_each, fresh=False)
        source = JobSource(engine, job)
        source.check_schema()
        assert source.labels_unique
        assert "ROW_NUMBER" not in sqlfiles.render("window_rows", source.identifiers(), dialect=source.dialect)
        result = evaluate_job(source, plan_window(AT, job.window, job.label_delay))
        assert_matches(result, expected(job, predictions + shadow, one_each))

    try:
        check()
        # Without the declaration the same data is ranked, as before.
        reset(engine)
        source = JobSource(engine, job)
        source.check_schema()
        assert not source.labels_unique
        assert "ROW_NUMBER" in sqlfiles.render("window_rows", source.identifiers(), dialect=source.dialect)
    finally:
        engine.dispose()


def test_window_edges_and_label_arrival(engine_url: str) -> None:
    """Start is inclusive, end exclusive; labels must have arrived before the evaluation time."""
    job = make_job()
    window = plan_window(AT, job.window, job.label_delay)
    predictions = [
        Prediction("at-start", "v1", window.start, "1", 0.9),
        Prediction("before-start", "v1", window.start - timedelta(seconds=1), "1", 0.9),
        Prediction("at-end", "v1", window.end, "1", 0.9),
        Prediction("just-inside", "v1", window.end - timedelta(seconds=1), "0", 0.2),
    ]
    labels = [
        Label("at-start", "1", window.start + timedelta(hours=1)),
        Label("just-inside", "1", AT),  # arrives exactly at the evaluation time: not yet known
        Label("at-end", "1", window.end + timedelta(hours=1)),
    ]
    load_url(engine_url, predictions, labels)
    [v] = evaluate(engine_url, job).versions
    assert (v.window_predictions, v.labeled_predictions) == (2, 1)
    assert v.predictions_total == 3  # before-start, at-start, just-inside; at-end is after the window
    assert v.confusion == {("1", "1"): 1}


def test_latest_label_wins(db_url: str) -> None:
    job = make_job()
    t = plan_window(AT, job.window, job.label_delay).start + timedelta(hours=2)
    predictions = [Prediction("a", "v1", t, "1", 0.8), Prediction("b", "v1", t, "0", 0.1)]
    labels = [
        Label("a", "0", t + timedelta(hours=1)),
        Label("a", "1", t + timedelta(hours=5)),   # correction: wins
        Label("b", "1", t + timedelta(hours=1)),
        Label("b", "0", AT + timedelta(hours=1)),  # arrives after the evaluation: ignored
    ]
    load_url(db_url, predictions, labels)
    [v] = evaluate(db_url, job).versions
    assert v.confusion == {("1", "1"): 1, ("1", "0"): 1}


def test_version_without_labels_gets_counts_and_no_ratios(db_url: str) -> None:
    job = make_job()
    t = plan_window(AT, job.window, job.label_delay).start
    load_url(db_url, [Prediction("a", "v9", t, "1", 0.5), Prediction("b", "v9", t, "0", 0.5)], [])
    [v] = evaluate(db_url, job).versions
    assert (v.window_predictions, v.labeled_predictions, v.label_coverage) == (2, 0, 0.0)
    assert v.metrics is None and v.scores.roc_auc is None and v.scores.log_loss is None


def test_empty_window(db_url: str) -> None:
    load_url(db_url, [], [])
    result = evaluate(db_url, make_job())
    assert result.versions == [] and result.orphan_labels == 0


def test_integer_columns_and_positive_label(db_url: str) -> None:
    """Users' tables with integer classes work with positive_label 1 or "1"."""
    engine = connect(db_url, create=True)
    t = plan_window(AT, timedelta(days=1), timedelta(days=1)).start
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE preds (id INTEGER, model TEXT, ver INTEGER, ts TIMESTAMP, "
                             "yhat INTEGER, p DOUBLE PRECISION)"))
        conn.execute(sa.text("CREATE TABLE truth (pid INTEGER, y INTEGER, ts TIMESTAMP)"))
        rows = [(1, 1, 0.9, 1), (2, 0, 0.2, 0), (3, 1, 0.6, 0), (4, 0, 0.4, 1)]
        # A TIMESTAMP without time zone column: the session runs in UTC, so aware values land as UTC.
        for pid, yhat, p, y in rows:
            conn.execute(sa.text("INSERT INTO preds VALUES (:id, 'm', 7, :ts, :yhat, :p)"),
                         {"id": pid, "ts": bind_time(engine.dialect.name, t), "yhat": yhat, "p": p})
            conn.execute(sa.text("INSERT INTO truth VALUES (:id, :y, :ts)"),
                         {"id": pid, "y": y, "ts": bind_time(engine.dialect.name, t + timedelta(hours=1))})
    engine.dispose()
    job = make_job(positive_label=1, tables={"predictions": "preds", "labels": "truth"},
                   columns={"prediction_id": "id", "model_name": "model", "model_version": "ver",
                            "predicted_at": "ts", "predicted_label": "yhat", "score": "p",
                            "latency_seconds": None, "label_prediction_id": "pid", "label": "y", "labeled_at": "ts"})
    [v] = evaluate(db_url, job).versions
    y_true, y_pred, s = [1, 0, 0, 1], [1, 0, 1, 0], [0.9, 0.2, 0.6, 0.4]
    assert v.model_version == "7"
    assert v.metrics.accuracy == skm.accuracy_score(y_true, y_pred)
    assert v.metrics.per_class["1"].recall == skm.recall_score(y_true, y_pred)
    assert v.scores.roc_auc == pytest.approx(skm.roc_auc_score(y_true, s), abs=TOL)


def test_quoted_names_and_views(db_url: str) -> None:
    """Mapped names that need quoting (spaces, capitals, reserved words) and a view over labels."""
    engine = connect(db_url, create=True)
    t = plan_window(AT, timedelta(days=1), timedelta(days=1)).start + timedelta(hours=3)
    ts = bind_time(engine.dialect.name, t)
    with engine.begin() as conn:
        conn.execute(sa.text('CREATE TABLE "Model Preds" ("ID" VARCHAR(10), "Model" VARCHAR(10), "order" VARCHAR(10), '
                             '"At" TIMESTAMP WITH TIME ZONE, "Pred Label" VARCHAR(10))'))
        conn.execute(sa.text('CREATE TABLE raw_labels ("ID" VARCHAR(10), "Truth" VARCHAR(10), "At" TIMESTAMP WITH TIME ZONE)'))
        conn.execute(sa.text('CREATE VIEW "Label View" AS SELECT "ID", "Truth", "At" FROM raw_labels'))
        conn.execute(sa.text('INSERT INTO "Model Preds" VALUES (\'x\', \'m\', \'v1\', :ts, \'a\')'), {"ts": ts})
        conn.execute(sa.text('INSERT INTO raw_labels VALUES (\'x\', \'a\', :ts)'), {"ts": ts})
    engine.dispose()
    job = make_job("multiclass", tables={"predictions": "Model Preds", "labels": "Label View"},
                   columns={"prediction_id": "ID", "model_name": "Model", "model_version": "order",
                            "predicted_at": "At", "predicted_label": "Pred Label",
                            "label_prediction_id": "ID", "label": "Truth", "labeled_at": "At"})
    [v] = evaluate(db_url, job).versions
    assert (v.model_version, v.labeled_predictions, v.metrics.accuracy) == ("v1", 1, 1.0)
    assert v.scores is None  # no score column in this table: not an error, just no score metrics


def test_missing_column_is_a_clear_error(db_url: str) -> None:
    load_url(db_url, [], [])
    job = make_job(columns={"predicted_label": "prediction"})
    with pytest.raises(SourceError) as info:
        evaluate(db_url, job)
    text = str(info.value)
    assert "column 'prediction' not found in 'predictions'" in text
    assert "set columns.predicted_label" in text and "\n" not in text


def test_explicit_optional_column_must_exist(db_url: str) -> None:
    load_url(db_url, [], [])
    with pytest.raises(SourceError, match="column 'proba' not found"):
        evaluate(db_url, make_job(columns={"score": "proba"}))


def test_missing_table_is_a_clear_error(db_url: str) -> None:
    load_url(db_url, [], [])
    with pytest.raises(SourceError, match="cannot read table or view 'preds'"):
        evaluate(db_url, make_job(tables={"predictions": "preds"}))


def test_scores_outside_unit_interval_are_reported_not_used(db_url: str) -> None:
    job = make_job()
    t = plan_window(AT, job.window, job.label_delay).start
    load_url(db_url, [Prediction("a", "v1", t, "1", 3.5), Prediction("b", "v1", t, "0", -1.0)],
             [Label("a", "1", t), Label("b", "0", t)])
    result = evaluate(db_url, job)
    [v] = result.versions
    assert v.scores.log_loss is None and v.scores.brier_score is None
    assert v.scores.roc_auc == 1.0  # ranks are still meaningful
    assert result.partial and "outside [0, 1]" in str(result.problems[0])


def load_url(url: str, predictions, labels) -> None:
    engine = connect(url, create=True)
    try:
        load(engine, predictions, labels)
    finally:
        engine.dispose()
