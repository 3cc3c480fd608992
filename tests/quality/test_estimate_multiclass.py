"""Multiclass CBPE, one-vs-rest: the SQL path on every engine against NannyML's multiclass CBPE with
the same per-class calibrators, the intervals against hidden labels, and the settings' errors."""

from __future__ import annotations

import os

# NannyML reports usage to a web service unless told not to; tests must not phone home.
os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"

import warnings  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from evaljobs.config import Job, parse_config  # noqa: E402
from evaljobs.db.dialects import bind_time  # noqa: E402
from evaljobs.db.engine import connect  # noqa: E402
from evaljobs.db.source import JobSource  # noqa: E402
from evaljobs.errors import ConfigError, SourceError  # noqa: E402
from evaljobs.quality import estimate as cbpe  # noqa: E402
from evaljobs.quality.estimation import evaluate_estimate  # noqa: E402
from evaljobs.windows import plan_window  # noqa: E402
from tests.conftest import ENGINES  # noqa: E402
from tests.dbdata import add_columns, create_table, insert, reset  # noqa: E402

CLASSES = ("billing", "returns", "shipping", "tech")
COLUMNS = {c: f"p_{c}" for c in CLASSES}
BINS = 10
REFERENCE_START = datetime(2026, 11, 10, tzinfo=timezone.utc)
RECENT_DAYS = [datetime(2026, 11, 12, tzinfo=timezone.utc) + timedelta(days=i) for i in range(3)]
#: Sums of the same floats in another order (SQL vs NumPy).
COUNT_TOLERANCE = 1e-7
#: NannyML rounds its cumulative expected counts to 5 decimals before the ROC AUC's trapezoids.
AUC_TOLERANCE = 1e-4
#: NannyML divides each prediction's calibrated probabilities by their sum; evaljobs cannot (it
#: keeps per-class bin counts, not rows). On over-confident softmax scores calibrated per class,
#: the difference this makes to accuracy and the macro metrics, per daily chunk, stays below:
NORMALISATION_BOUND = 0.02


def _draw(rng: np.random.Generator, n: int, start: datetime, hours: float, sharpen: float = 1.0) -> dict[str, Any]:
    """``n`` predictions over ``hours`` from ``start``: the true class ~ q (a Dirichlet draw), the
    prediction argmax q, the stored scores softmax(sharpen * log q) (sharpen 1: calibrated)."""
    q = rng.dirichlet([0.6, 0.5, 0.4, 0.3], n)
    truth = np.array([rng.choice(len(CLASSES), p=row) for row in q])
    logits = sharpen * np.log(np.clip(q, 1e-9, 1))
    scores = np.exp(logits - logits.max(axis=1, keepdims=True))
    scores = np.round(scores / scores.sum(axis=1, keepdims=True), 4)  # rounded: ties, as real scores have
    top = scores.argmax(axis=1)  # and still summing to 1, as NannyML requires of multiclass scores
    scores[np.arange(n), top] = 0
    scores[np.arange(n), top] = np.round(1 - scores.sum(axis=1), 4)
    times = [start + timedelta(seconds=float(x)) for x in np.sort(rng.random(n)) * hours * 3600]
    return {"scores": scores, "truth": truth, "predicted": q.argmax(axis=1), "at": times}


def _write(url: str, parts: list[tuple[str, dict[str, Any]]]) -> None:
    """The reference schema plus one probability column per class (the engine's float type, via
    tests/dbdata.py), and each part's predictions with a label a minute later."""
    engine = connect(url, create=True)
    reset(engine)
    columns = list(COLUMNS.values())
    add_columns(engine, "predictions", {column: "DOUBLE PRECISION" for column in columns})
    predictions, labels = [], []
    for version, part in parts:
        for i, (row, truth, predicted, at) in enumerate(zip(part["scores"], part["truth"], part["predicted"], part["at"])):
            pid = f"{version}-{at:%m%d%H%M%S%f}-{i}"
            predictions.append({"prediction_id": pid, "model_name": "m", "model_version": version,
                                "predicted_at": at, "predicted_label": CLASSES[predicted],
                                **{c: float(s) for c, s in zip(columns, row)}})
            labels.append({"prediction_id": pid, "label": CLASSES[truth], "labeled_at": at + timedelta(minutes=1)})
    insert(engine, "predictions", predictions)
    insert(engine, "labels", labels)
    engine.dispose()


def _job(estimate: dict[str, Any], label_delay: str = "0s", class_scores: dict[str, str] | None = None) -> Job:
    return Job.model_validate({"name": "cbpe", "model": "m", "task": "multiclass", "window": "1d",
                               "label_delay": label_delay, "schedule": "0 0 * * *", "estimate": estimate,
                               "columns": {"class_scores": class_scores or COLUMNS}})


def _estimates(url: str, job: Job, at: datetime) -> tuple[dict, list]:
    engine = connect(url)
    try:
        source = JobSource(engine, job)
        source.check_schema()
        return evaluate_estimate(source, plan_window(at, job.window, job.label_delay), [])
    finally:
        engine.dispose()


def _frame(part: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame({"at": pd.to_datetime(part["at"]).tz_localize(None),
                          "predicted": [CLASSES[i] for i in part["predicted"]],
                          "label": [CLASSES[i] for i in part["truth"]]})
    for k, c in enumerate(CLASSES):
        frame[COLUMNS[c]] = part["scores"][:, k]
    return frame


def _maps(reference: dict[str, Any], calibration: str) -> dict[str, cbpe.CalibrationMap] | None:
    """evaljobs' one-vs-rest maps from the reference's bin counts (computed here, not read back)."""
    if calibration == "calibrated":
        return None
    fit = {"isotonic": cbpe.isotonic, "histogram": cbpe.histogram_binning}[calibration]
    maps = {}
    for k, c in enumerate(CLASSES):
        bins = np.array([cbpe.score_bin(s, BINS) for s in reference["scores"][:, k]])
        maps[c] = fit(np.bincount(bins, minlength=BINS).tolist(),
                      np.bincount(bins, reference["truth"] == k, BINS).astype(int).tolist())
    return maps


def _nannyml(reference: pd.DataFrame, analysis: pd.DataFrame, maps) -> pd.DataFrame:
    """NannyML's multiclass CBPE, daily chunks, each class calibrated by evaljobs' map (None: raw scores)."""
    import nannyml
    from nannyml.calibration import Calibrator, NoopCalibrator

    class Fixed(Calibrator):
        def __init__(self, mapped: cbpe.CalibrationMap):
            self.mapped = mapped

        def fit(self, *args, **kwargs) -> None:  # the map is evaljobs', fitted already
            pass

        def calibrate(self, y_pred_proba, *args, **kwargs):
            return np.array([self.mapped.values[cbpe.score_bin(float(s), BINS)] for s in np.asarray(y_pred_proba)])

    estimator = nannyml.CBPE(
        y_pred_proba=COLUMNS, y_pred="predicted", y_true="label", timestamp_column_name="at",
        metrics=["roc_auc", "f1", "precision", "recall", "accuracy", "confusion_matrix"],
        chunk_period="D", problem_type="classification_multiclass", normalize_confusion_matrix=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(reference.copy())
        # NannyML fits one calibrator per class on that class's one-vs-rest split; use evaljobs' maps.
        estimator._calibrators = {c: Fixed(maps[c]) if maps else NoopCalibrator() for c in CLASSES}
        return estimator.estimate(analysis.drop(columns=["label"])).filter(period="analysis").to_df()


def _nannyml_formulas(frame: pd.DataFrame, maps) -> dict[str, float]:
    """NannyML's own per-class estimators on the calibrated, *not re-normalised* probabilities:
    what evaljobs computes, exactly."""
    from nannyml.performance_estimation.confidence_based import metrics as nml

    calibrated = {c: np.array([maps[c].values[cbpe.score_bin(s, BINS)] for s in frame[COLUMNS[c]]]) if maps
                  else frame[COLUMNS[c]].to_numpy() for c in CLASSES}
    predicted = {c: (frame["predicted"] == c).to_numpy().astype(int) for c in CLASSES}
    out = {name: float(np.mean([f(predicted[c], calibrated[c]) for c in CLASSES])) for name, f in (
        ("precision", nml.estimate_precision), ("recall", nml.estimate_recall), ("f1", nml.estimate_f1))}
    out["roc_auc"] = float(np.mean([nml.estimate_roc_auc(calibrated[c], frame[COLUMNS[c]].to_numpy()) for c in CLASSES]))
    out["accuracy"] = float(np.mean(np.max(np.array([predicted[c] * calibrated[c] for c in CLASSES]), axis=0)))
    for c in CLASSES:
        out[f"tp_{c}"] = float((predicted[c] * calibrated[c]).sum())
        out[f"fn_{c}"] = float(((1 - predicted[c]) * calibrated[c]).sum())
    return out


#: Every engine with every calibration, except Spark with one: the calibrations differ only in the
#: Python fit of the same SQL bin counts, and each Spark statement is a job of its own.
ESTIMATE_CASES = [(engine, calibration) for engine in ENGINES for calibration in ("isotonic", "histogram", "calibrated")
                  if engine != "spark" or calibration == "isotonic"]


@pytest.mark.parametrize(("engine_url", "calibration"), ESTIMATE_CASES, indirect=["engine_url"])
def test_multiclass_estimate_in_sql_against_nannyml_cbpe(engine_url, calibration) -> None:
    rng = np.random.default_rng(31)
    sharpen = 1.0 if calibration == "calibrated" else 1.6  # over-confident scores need the maps
    reference = _draw(rng, 2000, REFERENCE_START, 24, sharpen)
    recent = _draw(rng, 1200, RECENT_DAYS[0], 72, sharpen)
    _write(engine_url, [("v1", reference), ("v1", recent)])
    baseline = {"kind": "baseline", "start": "2026-11-10T00:00:00Z", "end": "2026-11-11T00:00:00Z"}
    job = _job({"reference": baseline, "bins": BINS} | (
        {"calibrated": True} if calibration == "calibrated" else {"calibration": calibration}))
    maps = _maps(reference, calibration)
    analysis = _frame(recent)
    nml = _nannyml(_frame(reference), analysis, maps)
    assert len(nml) == 3
    print(f"\n{calibration} on {engine_url.split(':')[0]}: evaljobs (SQL) | NannyML formulas, no re-normalisation "
          f"| NannyML CBPE, per daily chunk")
    for day, chunk in zip(RECENT_DAYS, nml.itertuples(index=False)):
        chunk = dict(zip(nml.columns, chunk))
        reports, problems = _estimates(engine_url, job, day + timedelta(days=1))
        assert not problems
        ours = reports["v1"]
        exact = _nannyml_formulas(analysis[(analysis["at"] >= day.replace(tzinfo=None))
                                           & (analysis["at"] < (day + timedelta(days=1)).replace(tzinfo=None))], maps)
        values = {"accuracy": ours.accuracy.value, "precision": ours.macro["precision"].value,
                  "recall": ours.macro["recall"].value, "f1": ours.macro["f1"].value, "roc_auc": ours.roc_auc.value}
        print(f"{day:%Y-%m-%d}  " + "  ".join(f"{name} {mine:.6f} | {exact[name]:.6f} | {chunk[(name, 'value')]:.6f}"
                                              for name, mine in values.items()))
        assert ours.reference.rows == 2000
        # Exactly NannyML's per-class estimators on the same calibrated probabilities.
        for name in ("accuracy", "precision", "recall", "f1"):
            assert values[name] == pytest.approx(exact[name], rel=COUNT_TOLERANCE), name
        assert abs(values["roc_auc"] - exact["roc_auc"]) <= ours.roc_auc_bound + AUC_TOLERANCE
        for c in CLASSES:
            assert ours.class_confusion[c]["true_positives"] == pytest.approx(exact[f"tp_{c}"], rel=COUNT_TOLERANCE)
            assert ours.class_confusion[c]["false_negatives"] == pytest.approx(exact[f"fn_{c}"], rel=COUNT_TOLERANCE)
        # NannyML's CBPE re-normalises each prediction's calibrated probabilities.
        if calibration == "calibrated":
            # Scores that sum to 1 (to 4 decimals): re-normalising changes nothing beyond rounding.
            for name in ("accuracy", "precision", "recall", "f1"):
                assert values[name] == pytest.approx(chunk[(name, "value")], abs=1e-3), name
            for c in CLASSES:
                assert ours.class_confusion[c]["true_positives"] == pytest.approx(
                    chunk[(f"true_{c}_pred_{c}", "value")], rel=1e-3)
        for name in ("accuracy", "precision", "recall", "f1"):
            assert abs(values[name] - chunk[(name, "value")]) < NORMALISATION_BOUND, name
        assert abs(values["roc_auc"] - chunk[("roc_auc", "value")]) < NORMALISATION_BOUND + ours.roc_auc_bound


def test_multiclass_intervals_cover_the_hidden_realised_values(sqlite_url) -> None:
    """Calibrated probabilities, labels in the table but never read for the recent window: the
    realised accuracy and macro F1 lie within their 95% intervals in the large majority of windows."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(2027)
    windows = 30
    reference = _draw(rng, 3000, REFERENCE_START, 24)
    parts = [_draw(rng, 400, RECENT_DAYS[0] + timedelta(days=i), 24) for i in range(windows)]
    _write(sqlite_url, [("v1", reference)] + [("v1", part) for part in parts])
    job = _job({"reference": {"kind": "baseline", "start": "2026-11-10T00:00:00Z", "end": "2026-11-11T00:00:00Z"},
                "bins": BINS})
    covered = {"accuracy": 0, "macro_f1": 0, "f1_billing": 0}
    errors = []
    for i, part in enumerate(parts):
        report = _estimates(sqlite_url, job, RECENT_DAYS[0] + timedelta(days=i + 1))[0]["v1"]
        y, p = part["truth"], part["predicted"]
        realised = {"accuracy": float((y == p).mean()),
                    "macro_f1": f1_score(y, p, average="macro", labels=range(len(CLASSES)), zero_division=0),
                    "f1_billing": f1_score(y == 0, p == 0, zero_division=0)}
        estimated = {"accuracy": report.accuracy, "macro_f1": report.macro["f1"], "f1_billing": report.per_class["billing"]["f1"]}
        for name, value in realised.items():
            covered[name] += estimated[name].lower <= value <= estimated[name].upper
        errors.append(report.accuracy.value - realised["accuracy"])
    print("coverage of the 95% intervals over", windows, "windows:", covered)
    assert all(hits >= 0.85 * windows for hits in covered.values()), covered
    assert abs(float(np.mean(errors))) < 0.015  # unbiased


def test_multiclass_calibration_check_and_problems(db_url) -> None:
    rng = np.random.default_rng(4)
    day0 = _draw(rng, 800, RECENT_DAYS[0], 24)
    day1 = _draw(rng, 800, RECENT_DAYS[1], 24)
    _write(db_url, [("v1", day0), ("v1", day1), ("v2", day1)])
    engine = connect(db_url)
    with engine.begin() as conn:  # one unscored prediction in the recent window
        conn.execute(sa.text("UPDATE predictions SET p_tech = NULL WHERE prediction_id IN (SELECT prediction_id "
                             "FROM predictions WHERE model_version = 'v1' AND predicted_at >= :day "
                             "ORDER BY prediction_id LIMIT 1)"), {"day": bind_time(engine.dialect.name, RECENT_DAYS[1])})
    engine.dispose()
    job = _job({"reference": {"kind": "baseline", "start": "2026-11-12T00:00:00Z", "end": "2026-11-13T00:00:00Z",
                              "version": "v1"}, "bins": BINS}, label_delay="1d")
    reports, problems = _estimates(db_url, job, RECENT_DAYS[2])
    assert not problems and set(reports) == {"v1", "v2"}
    report = reports["v1"]
    assert report.unscored == 1 and report.predictions == 799
    check = report.check  # the labelled window [day0) with the same reference: it agrees
    assert check.window_start == RECENT_DAYS[0] and check.labeled_predictions == 800
    assert check.realised_accuracy == pytest.approx(float((day0["truth"] == day0["predicted"]).mean()))
    assert abs(check.gap) < 3 * check.standard_error
    per_version = _job({"reference": {"kind": "baseline", "start": "2026-11-12T00:00:00Z",
                                      "end": "2026-11-13T00:00:00Z"}, "bins": BINS})
    reports, problems = _estimates(db_url, per_version, RECENT_DAYS[2])
    assert set(reports) == {"v1"}
    [problem] = problems
    assert str(problem).startswith("job 'cbpe' estimate version 'v2': the calibration reference")


def test_a_multiclass_table_reference(engine_url) -> None:
    rng = np.random.default_rng(8)
    holdout = _draw(rng, 900, REFERENCE_START, 24, sharpen=1.5)
    recent = _draw(rng, 500, RECENT_DAYS[0], 24, sharpen=1.5)
    _write(engine_url, [("v1", recent)])
    engine = connect(engine_url)
    create_table(engine, "holdout", {"label": "VARCHAR(16)"} | {c: "DOUBLE PRECISION" for c in COLUMNS.values()})
    insert(engine, "holdout", [{"label": CLASSES[t], **{COLUMNS[c]: float(s[k]) for k, c in enumerate(CLASSES)}}
                               for t, s in zip(holdout["truth"], holdout["scores"])])
    engine.dispose()
    job = _job({"reference": {"kind": "table", "table": "holdout"}, "calibration": "histogram", "bins": BINS})
    reports, problems = _estimates(engine_url, job, RECENT_DAYS[1])
    assert not problems and reports["v1"].reference.rows == 900
    maps = _maps(holdout, "histogram")
    exact = _nannyml_formulas(_frame(recent), maps)
    assert reports["v1"].macro["f1"].value == pytest.approx(exact["f1"], rel=COUNT_TOLERANCE)
    assert reports["v1"].accuracy.value == pytest.approx(exact["accuracy"], rel=COUNT_TOLERANCE)


def test_unknown_class_score_column_is_one_line_naming_the_setting(sqlite_url) -> None:
    rng = np.random.default_rng(1)
    _write(sqlite_url, [("v1", _draw(rng, 20, RECENT_DAYS[0], 24))])
    job = _job({"calibrated": True}, class_scores={**COLUMNS, "tech": "p_tek"})
    engine = connect(sqlite_url)
    with pytest.raises(SourceError) as error:
        JobSource(engine, job).check_schema()
    engine.dispose()
    text = str(error.value)
    assert "column 'p_tek' not found in 'predictions'" in text and "columns.class_scores.tech" in text
    assert "\n" not in text


@pytest.mark.parametrize("job, message", [
    ("task: multiclass, estimate: {calibrated: true}",
     "a multiclass estimate needs one probability column per class: set columns.class_scores"),
    ("task: binary, positive_label: 1, columns: {class_scores: {a: p_a, b: p_b}}",
     "columns.class_scores applies to multiclass jobs"),
    ("task: multiclass, columns: {class_scores: {a: p_a}}", "at least two"),
    ("task: multiclass, columns: {class_scores: [p_a, p_b]}", "maps each class to its probability column"),
    ("task: multiclass, columns: {class_scores: {a: p_a, b: p_a}}", "two classes map to the same column"),
])
def test_class_scores_settings_are_checked(job, message) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(f"jobs: [{{name: j, model: m, window: 1d, schedule: '0 * * * *', {job}}}]")
    assert message in str(error.value) and "\n" not in str(error.value)
