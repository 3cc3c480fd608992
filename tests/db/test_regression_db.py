"""task: regression on every engine: the SQL sums give scikit-learn's metrics on the same rows."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import strategies as st
from sklearn import metrics as skm

from evaljobs import cli, exposition
from evaljobs.config import Job
from evaljobs.db.engine import connect
from evaljobs.errors import ConfigError, SourceError
from evaljobs.windows import plan_window

from tests.conftest import examples
from tests.db.test_pipeline_db import AT, ORIGIN, TOL, evaluate, make_job
from tests.dbdata import Label, Prediction, for_each_data_set, load

BUCKETS = [-5.0, -1.0, 0.0, 0.5, 2.0, 10.0]


def regression_job(**overrides) -> Job:
    return make_job("regression", error_buckets=BUCKETS, **overrides)


def latest_labels(labels: list[Label], labels_as_of) -> dict[str, Label]:
    """The latest label before ``labels_as_of`` per prediction id (ties: the larger text), as the SQL."""
    latest: dict[str, Label] = {}
    for label in labels:
        if label.labeled_at >= labels_as_of:
            continue
        best = latest.get(label.prediction_id)
        if best is None or (label.labeled_at, label.label) > (best.labeled_at, best.label):
            latest[label.prediction_id] = label
    return latest


def expected_regression(job: Job, predictions: list[Prediction], labels: list[Label]) -> dict:
    """Per version: counts and scikit-learn's metrics on the window's labelled rows."""
    window = plan_window(AT, job.window, job.label_delay)
    latest = latest_labels(labels, window.labels_as_of)
    out = {}
    for version in sorted({p.model_version for p in predictions}):
        rows = [p for p in predictions if p.model_version == version and window.start <= p.predicted_at < window.end]
        if not rows:
            continue
        pairs = [(float(latest[p.prediction_id].label), float(p.predicted_label)) for p in rows
                 if p.prediction_id in latest]
        entry: dict = {"window": len(rows), "labelled": len(pairs)}
        if pairs:
            y, yhat = np.array([t for t, _ in pairs]), np.array([p for _, p in pairs])
            nonzero = y != 0
            entry |= {
                "mae": skm.mean_absolute_error(y, yhat),
                "mse": skm.mean_squared_error(y, yhat),
                "rmse": skm.root_mean_squared_error(y, yhat),
                "mape": skm.mean_absolute_percentage_error(y[nonzero], yhat[nonzero]) if nonzero.any() else None,
                "zero_labels": int((~nonzero).sum()),
                "r2": skm.r2_score(y, yhat) if len(y) >= 2 else None,
                "mean_error": float(np.mean(yhat - y)),
                "buckets": [int(((yhat - y) <= b).sum()) for b in BUCKETS],
                "error_sum": float(np.sum(yhat - y)),
                "spread": float(np.max(np.abs(yhat - y))),
                "label_range": float(np.ptp(y)),
            }
        out[version] = entry
    return out


def assert_regression(result, want: dict) -> None:
    assert [v.model_version for v in result.versions] == sorted(want)
    for version in result.versions:
        exp = want[version.model_version]
        assert (version.window_predictions, version.labeled_predictions) == (exp["window"], exp["labelled"])
        assert version.metrics is None and version.confusion == {}
        metrics = version.regression
        if not exp["labelled"]:
            assert metrics is None
            continue
        assert metrics.mae == pytest.approx(exp["mae"], rel=TOL, abs=TOL)
        assert metrics.mse == pytest.approx(exp["mse"], rel=TOL, abs=TOL)
        assert metrics.rmse == pytest.approx(exp["rmse"], rel=TOL, abs=TOL)
        assert metrics.zero_labels == exp["zero_labels"]
        if exp["mape"] is None:
            assert metrics.mape is None
        else:
            assert metrics.mape == pytest.approx(exp["mape"], rel=TOL, abs=TOL)
        # The mean error is a sum with cancellation: compare relative to the errors' size.
        assert metrics.mean_error == pytest.approx(exp["mean_error"], abs=TOL * max(1.0, exp["spread"]))
        if exp["r2"] is None:
            assert metrics.r2 is None
        elif exp["label_range"] > 1e-6:
            # With (nearly) constant labels R2 is 0/0 and both sides only round differently.
            assert metrics.r2 == pytest.approx(exp["r2"], rel=TOL, abs=TOL)
        histogram = version.error_histogram
        assert list(histogram.cumulative_counts) == exp["buckets"] and histogram.count == exp["labelled"]
        assert histogram.sum == pytest.approx(exp["error_sum"], abs=TOL * max(1.0, exp["spread"]) * exp["labelled"])


# Values as a serving system writes them: decimals of a few digits, some of them 0, over a wide range.
values = st.one_of(
    st.integers(-1000, 1000).map(float),
    st.decimals(-1e6, 1e6, places=3, allow_nan=False, allow_infinity=False).map(float),
    st.sampled_from([0.0, 0.5, 1e-3, 12.25]),
)


@st.composite
def regression_sets(draw):
    n = draw(st.integers(1, 50))
    predictions, labels = [], []
    for i in range(n):
        at = ORIGIN + timedelta(minutes=draw(st.integers(0, 48 * 60)))
        predictions.append(Prediction(f"p{i}", draw(st.sampled_from(["v1", "v2"])), at, repr(draw(values))))
        for _ in range(draw(st.integers(0, 2))):
            labels.append(Label(f"p{i}", repr(draw(values)), at + timedelta(hours=draw(st.integers(0, 60)))))
    return predictions, labels


def test_random_data_equals_sklearn(engine_url: str) -> None:
    job = regression_job()
    for_each_data_set(engine_url, job, AT, regression_sets(), lambda result, predictions, labels, *_:
                      assert_regression(result, expected_regression(job, predictions, labels)), examples=examples(engine_url, 30))


def delivery_rows(version: str, pairs: list[tuple[float, float]], start: int = 0):
    """Predictions (predicted, actual) of one version in the window, all labelled."""
    at = AT - timedelta(days=1, hours=12)
    predictions = [Prediction(f"{version}-{i}", version, at, repr(p)) for i, (p, _) in enumerate(pairs, start)]
    labels = [Label(f"{version}-{i}", repr(a), at + timedelta(hours=1)) for i, (_, a) in enumerate(pairs, start)]
    return predictions, labels


def test_large_offset_labels_keep_r2_exact(engine_url: str) -> None:
    # Labels near 1e6 that differ by fractions: sum(y^2) - sum(y)^2/n would lose every digit.
    pairs = [(1_000_000.25, 1_000_000.5), (1_000_000.5, 1_000_000.0), (999_999.75, 999_999.5), (1_000_000.0, 1_000_000.25)]
    predictions, labels = delivery_rows("v1", pairs)
    load_url = connect(engine_url, create=True)
    try:
        load(load_url, predictions, labels)
    finally:
        load_url.dispose()
    job = regression_job()
    [version] = evaluate(engine_url, job).versions
    y, yhat = [a for _, a in pairs], [p for p, _ in pairs]
    # Still 1e-9 (DuckDB merges its parallel VAR_POP states in varying order: ~1e-11 apart here).
    assert version.regression.r2 == pytest.approx(skm.r2_score(y, yhat), rel=TOL)


def test_zero_labels_are_skipped_in_mape_and_counted(db_url: str) -> None:
    predictions, labels = delivery_rows("v1", [(1.0, 0.0), (2.0, 4.0), (3.0, 0.0)])
    engine = connect(db_url, create=True)
    load(engine, predictions, labels)
    engine.dispose()
    [version] = evaluate(db_url, regression_job()).versions
    assert version.regression.zero_labels == 2
    assert version.regression.mape == pytest.approx(0.5)
    names = {f.name for f in exposition.version_families(version)}
    assert {"model_mean_absolute_error", "model_root_mean_squared_error", "model_r2_score",
            "model_mean_absolute_percentage_error_ratio", "model_zero_label_predictions",
            "model_prediction_error"} <= names


def test_only_zero_labels_give_no_mape(db_url: str) -> None:
    predictions, labels = delivery_rows("v1", [(1.0, 0.0)])
    engine = connect(db_url, create=True)
    load(engine, predictions, labels)
    engine.dispose()
    [version] = evaluate(db_url, regression_job()).versions
    assert version.regression.mape is None and version.regression.r2 is None
    assert version.regression.mae == 1.0
    assert "model_mean_absolute_percentage_error_ratio" not in {f.name for f in exposition.version_families(version)}


@pytest.mark.parametrize("bad", ["label", "prediction"])
def test_text_in_regression_values_is_refused_in_one_line(engine_url: str, bad: str, tmp_path, capsys) -> None:
    # A text value where a number belongs: SQLite's CAST would read 'n/a' as 0 and compute a
    # wrong MAE silently; every engine refuses the window in one line instead (SQLite with the
    # count and an example, the others with their own cast error).
    predictions, labels = delivery_rows("v1", [(10.0, 12.0), (20.0, 18.0), (5.0, 5.0)])
    predictions[0].predicted_label = "n/a" if bad == "prediction" else "11.0"
    labels[0].label = " 12 " if bad == "prediction" else "n/a"  # spaces around a number: a number
    engine = connect(engine_url, create=True)
    load(engine, predictions, labels)
    engine.dispose()
    with pytest.raises(SourceError) as info:
        evaluate(engine_url, regression_job())
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    if engine_url.startswith("sqlite"):
        what = "predicted value(s) in 'predicted_label'" if bad == "prediction" else "label(s) in 'label'"
        assert f"job 'j': 1 {what} (e.g. 'n/a') of the window are not numbers, which sqlite would read as 0" in message
        assert "map a view that leaves those rows out" in message
        config = tmp_path / "r.yaml"
        config.write_text(f"database: '{engine_url}'\njobs:\n  - {{name: j, model: m, task: regression, window: 1d, "
                          "label_delay: 1d, schedule: '0 0 * * *'}\n")
        assert cli.main(["run", "j", "--config", str(config), "--at", AT.isoformat(), "--dry-run"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "are not numbers" in err, err
    else:
        assert "n/a" in message, message


def test_a_predicted_value_column_is_used_and_checked(db_url: str) -> None:
    import sqlalchemy as sa

    predictions, labels = delivery_rows("v1", [(10.0, 12.0), (20.0, 18.0)])
    engine = connect(db_url, create=True)
    load(engine, predictions, labels)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE predictions ADD COLUMN eta_minutes DOUBLE PRECISION"))
        conn.execute(sa.text("UPDATE predictions SET eta_minutes = 15"))
    engine.dispose()
    [version] = evaluate(db_url, regression_job(columns={"predicted_value": "eta_minutes"})).versions
    assert version.regression.mae == pytest.approx(3.0) and version.regression.mean_error == pytest.approx(0.0)
    with pytest.raises(SourceError, match="column 'eta' not found.*columns.predicted_value"):
        evaluate(db_url, regression_job(columns={"predicted_value": "eta"}))


def test_null_predicted_value_is_refused(db_url: str) -> None:
    import sqlalchemy as sa

    predictions, labels = delivery_rows("v1", [(10.0, 12.0)])
    engine = connect(db_url, create=True)
    load(engine, predictions, labels)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE predictions ADD COLUMN eta DOUBLE PRECISION"))
    engine.dispose()
    with pytest.raises(SourceError, match="1 prediction.*NULL 'eta'") as info:
        evaluate(db_url, regression_job(columns={"predicted_value": "eta"}))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("bad, message", [
    ("error_buckets: [1, 1]", "strictly increasing"),
    ("error_buckets: 5", "must be a list"),
    ("positive_label: 1", "positive_label applies to binary jobs"),
    ("gate: {min_accuracy: 0.9}", "min_accuracy apply to classification jobs"),
])
def test_bad_regression_settings(bad: str, message: str) -> None:
    from evaljobs.config import parse_config

    text = ("jobs:\n  - {name: eta, model: m, task: regression, window: 1d, schedule: '0 0 * * *', "
            f"{bad}}}\n")
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(text, source="s.yaml")
    assert "\n" not in str(info.value)


def test_regression_settings_on_a_classification_job_are_refused() -> None:
    from evaljobs.config import parse_config

    text = ("jobs:\n  - {name: c, model: m, task: multiclass, window: 1d, schedule: '0 0 * * *', "
            "gate: {max_mae: 3}}\n")
    with pytest.raises(ConfigError, match="apply to regression jobs"):
        parse_config(text, source="s.yaml")


def test_signed_error_histogram_is_prometheus_cumulative(db_url: str) -> None:
    predictions, labels = delivery_rows("v1", [(10.0, 12.0), (20.0, 18.0), (5.0, 5.0), (0.0, 30.0)])
    engine = connect(db_url, create=True)
    load(engine, predictions, labels)
    engine.dispose()
    [version] = evaluate(db_url, regression_job()).versions
    [family] = [f for f in exposition.version_families(version) if f.name == "model_prediction_error"]
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    # errors: -2, +2, 0, -30
    assert buckets == {"-5.0": 1, "-1.0": 2, "0.0": 3, "0.5": 3, "2.0": 4, "10.0": 4, "+Inf": 4}
    # With negative bounds there is no _sum or _count (OpenMetrics forbids a _sum then):
    # the +Inf bucket is the count, model_mean_error the mean.
    assert {s.name for s in family.samples} == {"model_prediction_error_bucket"}
    assert version.regression.mean_error == pytest.approx(-30 / 4) and math.isfinite(version.error_histogram.sum)


def test_drift_compares_prediction_and_label_as_numbers(engine_url: str) -> None:
    rng = random.Random(5)
    champion = [(round(rng.gauss(30, 5), 1), round(rng.gauss(30, 5), 1)) for _ in range(80)]
    canary = [(round(rng.gauss(45, 5), 1), round(rng.gauss(30, 5), 1)) for _ in range(80)]
    p1, l1 = delivery_rows("eta-2", champion)
    p2, l2 = delivery_rows("eta-3", canary, start=1000)
    engine = connect(engine_url, create=True)
    load(engine, p1 + p2, l1 + l2)
    engine.dispose()
    job = regression_job(drift={"reference": {"kind": "version", "version": "eta-2"}})
    result = evaluate(engine_url, job)
    assert not result.problems, result.problems
    [canary_version] = [v for v in result.versions if v.model_version == "eta-3"]
    features = {f.feature: f for f in canary_version.drift.features}
    assert features["predicted_label"].kind == "numeric" and features["predicted_label"].detected
    assert features["label"].kind == "numeric" and not features["label"].detected
    assert features["label"].current_values == 80


def test_tidy_rows_carry_the_regression_metrics(db_url: str) -> None:
    from evaljobs.api import tidy_rows

    predictions, labels = delivery_rows("v1", [(10.0, 12.0), (20.0, 18.0), (5.0, 5.0)])
    engine = connect(db_url, create=True)
    load(engine, predictions, labels)
    engine.dispose()
    rows = {row["metric"]: row["value"] for row in tidy_rows(evaluate(db_url, regression_job()))}
    assert rows["mae"] == pytest.approx(4 / 3) and rows["mse"] == pytest.approx(8 / 3)
    assert {"rmse", "mape", "r2", "mean_error", "zero_labels"} <= set(rows)
