"""Data that real tables contain and a naive query gets wrong: each case is exact or refused aloud."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sklearn import metrics as skm

from evaljobs import cli
from evaljobs.errors import ConfigError, SourceError
from evaljobs.db.engine import connect

from tests.dbdata import Label, Prediction, create_table, insert, load
from tests.db.test_pipeline_db import AT, evaluate, load_url, make_job

T = AT - timedelta(days=1, hours=12)


def test_two_versions_scoring_the_same_request(engine_url: str) -> None:
    """Shadow and canary deployments score one request id with several versions: each counts."""
    ids = ["a", "b", "c", "d"]
    predictions = [Prediction(i, "v1", T, "1", 0.9) for i in ids] + [Prediction(i, "v2", T, "0", 0.2) for i in ids]
    load_url(engine_url, predictions, [Label(i, "1", T + timedelta(hours=1)) for i in ids])
    versions = {v.model_version: v for v in evaluate(engine_url, make_job()).versions}
    assert set(versions) == {"v1", "v2"}
    assert (versions["v1"].labeled_predictions, versions["v1"].metrics.accuracy) == (4, 1.0)
    assert (versions["v2"].labeled_predictions, versions["v2"].metrics.accuracy) == (4, 0.0)


def test_float_class_columns_match_integer_classes(engine_url: str) -> None:
    """A label column of floats (what a pandas column with NaNs becomes) still matches 1 and "1"."""
    engine = connect(engine_url, create=True)
    create_table(engine, "preds", {"prediction_id": "VARCHAR(8)", "model_name": "VARCHAR(8)",
                                   "model_version": "VARCHAR(8)", "predicted_at": "TIMESTAMP WITH TIME ZONE",
                                   "predicted_label": "INTEGER", "score": "DOUBLE PRECISION"})
    create_table(engine, "truth", {"prediction_id": "VARCHAR(8)", "label": "DOUBLE PRECISION",
                                   "labeled_at": "TIMESTAMP WITH TIME ZONE"})
    rows = [("a", 1, 0.9, 1.0), ("b", 0, 0.2, 0.0), ("c", 1, 0.6, 0.0), ("d", 0, 0.4, 1.0), ("e", 1, 0.7, 1.0)]
    insert(engine, "preds", [{"prediction_id": pid, "model_name": "m", "model_version": "v1", "predicted_at": T,
                              "predicted_label": guess, "score": score} for pid, guess, score, _ in rows])
    insert(engine, "truth", [{"prediction_id": pid, "label": truth, "labeled_at": T} for pid, _, _, truth in rows])
    engine.dispose()
    job = make_job(positive_label=1, tables={"predictions": "preds", "labels": "truth"},
                   columns={"latency_seconds": None})
    [v] = evaluate(engine_url, job).versions
    y_true, y_pred, s = [1, 0, 0, 1, 1], [1, 0, 1, 0, 1], [0.9, 0.2, 0.6, 0.4, 0.7]
    assert v.metrics.classes == ("0", "1")
    assert v.metrics.accuracy == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-12)
    assert v.scores.roc_auc == pytest.approx(skm.roc_auc_score(y_true, s), abs=1e-12)
    assert v.scores.log_loss == pytest.approx(skm.log_loss(y_true, s), abs=1e-9)


def test_nan_and_infinite_scores_are_refused_not_ranked(postgres_url: str) -> None:
    engine = connect(postgres_url, create=True)
    load(engine, [Prediction("a", "v1", T, "1", 0.9), Prediction("b", "v1", T, "0", 0.2)],
         [Label("a", "1", T), Label("b", "0", T)])
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO predictions VALUES ('c', 'm', 'v1', :t, '1', 'NaN', NULL)"),
                     {"t": T})
    engine.dispose()
    result = evaluate(postgres_url, make_job())
    [v] = result.versions
    assert (v.scores.roc_auc, v.scores.log_loss, v.scores.brier_score) == (None, None, None)
    assert v.metrics.accuracy == 1.0
    assert result.partial and "NaN or infinite" in str(result.problems[0])


def test_positive_label_that_never_occurs_is_reported(db_url: str) -> None:
    load_url(db_url, [Prediction("a", "v1", T, "fraud", 0.9), Prediction("b", "v1", T, "legit", 0.1)],
             [Label("a", "fraud", T), Label("b", "legit", T)])
    result = evaluate(db_url, make_job(positive_label="Fraud"))
    [v] = result.versions
    assert v.scores.log_loss is None and v.scores.roc_auc is None
    assert "positive_label 'Fraud' occurs in no label or prediction (classes: fraud, legit)" in str(result.problems[0])
    # A window of negatives only is not a misconfiguration: the metrics are computed.
    load_url(db_url, [Prediction("a", "v1", T, "legit", 0.1)], [Label("a", "legit", T)])
    quiet = evaluate(db_url, make_job(positive_label="fraud"))
    assert not quiet.problems and quiet.versions[0].scores.log_loss == pytest.approx(-__import__("math").log(0.9))


@pytest.mark.parametrize("column", ["model_version", "predicted_label"])
def test_empty_version_or_prediction_is_a_clear_error(db_url: str, column: str) -> None:
    load_url(db_url, [Prediction("a", "v1", T, "1", 0.5)], [])
    engine = connect(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE predictions SET {column} = ''"))
    engine.dispose()
    with pytest.raises(SourceError, match=rf"1 prediction\(s\) in the window have an empty or NULL '{column}'"):
        evaluate(db_url, make_job())


@pytest.mark.parametrize("stored", ["2026-01-08T03:00:00", "2026-01-08 07:00:00+02:00", 1767841200])
def test_sqlite_timestamps_in_another_form_are_refused(sqlite_url: str, stored) -> None:
    """SQLite compares timestamps as text: another form would put rows in the wrong window."""
    load_url(sqlite_url, [Prediction("a", "v1", T, "1", 0.5)], [])
    engine = connect(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE predictions SET predicted_at = :v"), {"v": stored})
    engine.dispose()
    with pytest.raises(SourceError, match=r"predictions.predicted_at holds .* UTC text 'YYYY-MM-DD HH:MM:SS"):
        evaluate(sqlite_url, make_job())


def test_password_with_an_at_sign_is_never_printed(capsys, tmp_path) -> None:
    config = tmp_path / "s.yaml"
    config.write_text("database: postgresql+psycopg://bob:Tr0ub4dor@Secret@127.0.0.1:9/db\n"
                      "pushgateway: http://127.0.0.1:9\njobs: [{name: j, model: m, task: multiclass, "
                      "window: 1d, schedule: '0 0 * * *'}]\n")
    code = cli.main(["run", "j", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and "URL-encode it as %40" in err
    assert "Tr0ub4dor" not in err and "Secret" not in err


def test_out_of_range_inputs_are_usage_errors(capsys, tmp_path) -> None:
    config = tmp_path / "s.yaml"
    config.write_text("pushgateway: http://127.0.0.1:99999\njobs: [{name: j, model: m, task: multiclass, "
                      "window: 1d, schedule: '0 0 * * *'}]\n")
    assert cli.main(["run", "j", "--config", str(config)]) == 2
    assert "has an invalid port" in capsys.readouterr().err
    for at in ("9999-12-31T23:00:00Z", "0001-01-01T00:00:00Z"):
        with pytest.raises(SystemExit) as info:
            cli.main(["run", "j", "--config", str(config), "--at", at])
        assert info.value.code == 2 and "out of range" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="not a valid SQLAlchemy URL"):
        connect("::not a url::")
