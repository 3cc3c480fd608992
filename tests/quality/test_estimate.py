"""Estimated performance (CBPE): the maths against scikit-learn, the SQL path on every engine against
NannyML's CBPE with the same calibrator, and the intervals against hidden labels."""

from __future__ import annotations

import os

# NannyML reports usage to a web service unless told not to; tests must not phone home.
os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"

import math  # noqa: E402
import warnings  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from sklearn.isotonic import IsotonicRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from evaljobs.config import Job  # noqa: E402
from evaljobs.db.dialects import dialect_of  # noqa: E402
from evaljobs.db.engine import connect  # noqa: E402
from evaljobs.db.source import JobSource  # noqa: E402
from evaljobs.quality import estimate as cbpe  # noqa: E402
from evaljobs.quality.estimation import evaluate_estimate  # noqa: E402
from evaljobs.windows import plan_window  # noqa: E402
from tests import dbdata  # noqa: E402
from tests.conftest import ENGINES  # noqa: E402
from tests.dbdata import Label, Prediction, load  # noqa: E402

BINS = 20
REFERENCE_START = datetime(2026, 11, 10, tzinfo=timezone.utc)
RECENT_DAYS = [datetime(2026, 11, 12, tzinfo=timezone.utc) + timedelta(days=i) for i in range(3)]
#: NannyML rounds its cumulative expected counts to 5 decimals before the ROC AUC's trapezoids.
AUC_TOLERANCE = 1e-4
#: Sums of the same floats in another order (SQL vs NumPy).
COUNT_TOLERANCE = 1e-7


# ---- the maths alone ------------------------------------------------------------------------------
counts = st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=2, max_size=30)


@settings(max_examples=60, deadline=None)
@given(counts)
def test_isotonic_map_is_sklearns_isotonic_regression_on_the_bins(pairs) -> None:
    rows = [n + p for n, p in pairs]
    positives = [p for _, p in pairs]
    if not any(rows):
        with pytest.raises(ValueError):
            cbpe.isotonic(rows, positives)
        return
    mapped = cbpe.isotonic(rows, positives)
    occupied = [b for b, n in enumerate(rows) if n]
    expected = IsotonicRegression(out_of_bounds="clip").fit(
        occupied, [positives[b] / rows[b] for b in occupied], sample_weight=[rows[b] for b in occupied])
    # Every bin, occupied or not: sklearn interpolates linearly between fitted points too.
    np.testing.assert_allclose(mapped.values, expected.predict(np.arange(len(rows))), atol=1e-12)
    assert all(a <= b + 1e-12 for a, b in zip(mapped.values, mapped.values[1:]))


def test_histogram_binning_is_each_bins_rate() -> None:
    mapped = cbpe.histogram_binning([10, 0, 4, 5], [1, 0, 3, 1])
    assert mapped.values == pytest.approx((0.1, (0.1 + 0.75) / 2, 0.75, 0.2))
    assert mapped.block_rows == (10, 4, 5)


def test_ece_is_the_weighted_gap_between_mean_score_and_positive_rate() -> None:
    rng = np.random.default_rng(3)
    scores = rng.random(5000) ** 2
    labels = rng.random(5000) < scores ** 0.7
    bins = np.array([cbpe.score_bin(s, 10) for s in scores])
    rows = np.bincount(bins, minlength=10)
    direct = sum(abs(scores[bins == b].mean() - labels[bins == b].mean()) * rows[b] / 5000 for b in range(10) if rows[b])
    ece = cbpe.expected_calibration_error(rows.tolist(), np.bincount(bins, labels, 10).tolist(),
                                          np.bincount(bins, scores, 10).tolist())
    assert ece == pytest.approx(direct, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 40), st.floats(0, 40)), min_size=1, max_size=15))
def test_expected_auc_is_the_weighted_auc_with_bins_as_ties(bins) -> None:
    auc, bound = cbpe.expected_roc_auc(bins)
    p, n = sum(b[0] for b in bins), sum(b[1] for b in bins)
    if p < 1e-9 or n < 1e-9:
        return
    weights = [w for pos, neg in bins for w in (pos, neg)]
    truth = [t for _ in bins for t in (1, 0)]
    scores = [i for i in range(len(bins)) for _ in (0, 1)]
    assert auc == pytest.approx(roc_auc_score(truth, scores, sample_weight=weights), abs=1e-9)
    assert bound == pytest.approx(sum(pos * neg for pos, neg in bins) / (2 * p * n))


def test_intervals_widen_with_fewer_predictions_and_with_a_smaller_reference() -> None:
    mapped = cbpe.isotonic([100] * 10, [5, 10, 20, 30, 45, 55, 70, 80, 90, 95])
    few = cbpe.estimate([cbpe.Cell(b, b >= 5, 20) for b in range(10)], mapped)
    many = cbpe.estimate([cbpe.Cell(b, b >= 5, 2000) for b in range(10)], mapped)
    assert few.accuracy.value == pytest.approx(many.accuracy.value)
    assert few.accuracy.standard_error > many.accuracy.standard_error
    small_reference = cbpe.isotonic([10] * 10, [0, 1, 2, 3, 4, 6, 7, 8, 9, 10])
    assert cbpe.estimate([cbpe.Cell(b, b >= 5, 2000) for b in range(10)], small_reference).accuracy.standard_error \
        > many.accuracy.standard_error
    # Predicted positives in bins 5..9: expected TP = sum of rate * count.
    assert many.true_positives == pytest.approx(2000 * (0.55 + 0.70 + 0.80 + 0.90 + 0.95))


# ---- through the database, against NannyML ------------------------------------------------------------
def _draw(rng: np.random.Generator, n: int, start: datetime, hours: float, distort: float = 1.0) -> dict[str, Any]:
    """``n`` predictions spread over ``hours`` from ``start``: scores s, labels ~ Bernoulli(s ** distort)."""
    scores = np.round(rng.beta(0.7, 2.0, n), 4)  # rounded: ties, as real scores have
    labels = rng.random(n) < scores ** distort
    times = [start + timedelta(seconds=float(x)) for x in np.sort(rng.random(n)) * hours * 3600]
    return {"score": scores, "label": labels.astype(int), "predicted": (scores >= 0.35).astype(int), "at": times}


def _write(url: str, parts: list[tuple[str, dict[str, Any]]], labelled_after: timedelta = timedelta(minutes=1)) -> None:
    predictions, labels = [], []
    for version, part in parts:
        for i, (score, label, predicted, at) in enumerate(zip(part["score"], part["label"], part["predicted"], part["at"])):
            pid = f"{version}-{at:%m%d%H%M%S%f}-{i}"
            predictions.append(Prediction(pid, version, at, str(predicted), float(score)))
            labels.append(Label(pid, str(label), at + labelled_after))
    engine = connect(url, create=True)
    load(engine, predictions, labels)
    engine.dispose()


def _job(estimate: dict[str, Any], label_delay: str = "0s") -> Job:
    return Job.model_validate({"name": "cbpe", "model": "m", "task": "binary", "positive_label": 1, "window": "1d",
                               "label_delay": label_delay, "schedule": "0 0 * * *", "estimate": estimate})


def _estimates(url: str, job: Job, at: datetime) -> tuple[dict, list]:
    engine = connect(url)
    try:
        source = JobSource(engine, job)
        source.check_schema()
        return evaluate_estimate(source, plan_window(at, job.window, job.label_delay), [])
    finally:
        engine.dispose()


def _nannyml(reference: pd.DataFrame, analysis: pd.DataFrame, calibrate) -> pd.DataFrame:
    """NannyML's CBPE, daily chunks, with ``calibrate`` as its calibrator (None: the raw scores)."""
    import nannyml
    from nannyml.calibration import Calibrator

    class Fixed(Calibrator):
        def fit(self, *args, **kwargs) -> None:  # the map is evaljobs', fitted already
            pass

        def calibrate(self, y_pred_proba, *args, **kwargs):
            return np.array([calibrate(float(s)) for s in np.asarray(y_pred_proba)])

    estimator = nannyml.CBPE(
        y_pred_proba="score", y_pred="predicted", y_true="label", timestamp_column_name="at",
        metrics=["roc_auc", "f1", "precision", "recall", "accuracy", "confusion_matrix"],
        chunk_period="D", problem_type="classification_binary", normalize_confusion_matrix=None,
        calibrator=Fixed() if calibrate else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(reference)
        estimator.needs_calibration = calibrate is not None
        result = estimator.estimate(analysis.drop(columns=["label"])).filter(period="analysis").to_df()
    return result


def _frame(part: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame({"at": pd.to_datetime(part["at"]).tz_localize(None), "score": part["score"],
                         "predicted": part["predicted"], "label": part["label"]})


# Every calibration on every engine but Spark, which runs one (each Spark statement is a job;
# the calibrations differ in Python, not in the SQL).
ESTIMATE_CASES = [(engine, calibration) for engine in ENGINES for calibration in ("isotonic", "histogram", "calibrated")
                  if engine != "spark" or calibration == "isotonic"]


@pytest.mark.parametrize(("engine_url", "calibration"), ESTIMATE_CASES, indirect=["engine_url"])
def test_estimate_in_sql_equals_nannyml_cbpe_with_the_same_calibrator(engine_url, calibration) -> None:
    rng = np.random.default_rng(13)
    reference = _draw(rng, 1500, REFERENCE_START, 24, distort=1.3)  # scores a little over-confident
    recent = _draw(rng, 900, RECENT_DAYS[0], 72, distort=1.3)
    _write(engine_url, [("v1", reference), ("v1", recent)])
    baseline = {"kind": "baseline", "start": "2026-11-10T00:00:00Z", "end": "2026-11-11T00:00:00Z"}
    settings_ = {"reference": baseline, "bins": BINS} | (
        {"calibrated": True} if calibration == "calibrated" else {"calibration": calibration})
    job = _job(settings_)

    # The map from the reference's bin counts, checked against scikit-learn, given to NannyML.
    bins = np.array([cbpe.score_bin(s, BINS) for s in reference["score"]])
    rows = np.bincount(bins, minlength=BINS).tolist()
    positives = np.bincount(bins, reference["label"], BINS).astype(int).tolist()
    mapped = {"isotonic": cbpe.isotonic, "histogram": cbpe.histogram_binning}.get(calibration, lambda r, p: None)(rows, positives)
    calibrate = (lambda s: mapped.values[cbpe.score_bin(s, BINS)]) if mapped else None
    nml = _nannyml(_frame(reference), _frame(recent), calibrate)
    assert len(nml) == 3

    print(f"\n{calibration} on {engine_url.split(':')[0]}: evaljobs (SQL) | NannyML CBPE, per daily chunk")
    for day, chunk in zip(RECENT_DAYS, nml.itertuples(index=False)):
        chunk = dict(zip(nml.columns, chunk))
        reports, problems = _estimates(engine_url, job, day + timedelta(days=1))
        assert not problems
        ours = reports["v1"]
        print(f"{day:%Y-%m-%d}  " + "  ".join(
            f"{name} {mine:.6f} | {chunk[(name, 'value')]:.6f}" for name, mine in (
                ("true_positive", ours.confusion["true_positives"]), ("false_positive", ours.confusion["false_positives"]),
                ("accuracy", ours.accuracy.value), ("f1", ours.per_class["1"]["f1"].value),
                ("roc_auc", ours.roc_auc.value))))
        assert ours.reference.rows == 1500
        for name, key in (("true_positive", "true_positives"), ("false_positive", "false_positives"),
                          ("false_negative", "false_negatives"), ("true_negative", "true_negatives")):
            assert ours.confusion[key] == pytest.approx(chunk[(name, "value")], rel=COUNT_TOLERANCE), name
        assert ours.accuracy.value == pytest.approx(chunk[("accuracy", "value")], rel=COUNT_TOLERANCE)
        for name in ("precision", "recall", "f1"):
            assert ours.per_class["1"][name].value == pytest.approx(chunk[(name, "value")], rel=COUNT_TOLERANCE), name
        # Equal with a map (constant within a bin); over raw scores within the stated bin bound.
        assert abs(ours.roc_auc.value - chunk[("roc_auc", "value")]) <= ours.roc_auc_bound + AUC_TOLERANCE
        if mapped:
            assert ours.roc_auc_bound == 0


def test_estimate_intervals_cover_the_hidden_realised_values(sqlite_url) -> None:
    """Calibrated scores, labels in the table but never read for the recent window: the realised
    value lies within the 95% interval of its estimate in the large majority of windows."""
    rng = np.random.default_rng(2026)
    windows = 40
    reference = _draw(rng, 3000, REFERENCE_START, 24)
    parts = [_draw(rng, 400, RECENT_DAYS[0] + timedelta(days=i), 24) for i in range(windows)]
    _write(sqlite_url, [("v1", reference)] + [("v1", part) for part in parts])
    job = _job({"reference": {"kind": "baseline", "start": "2026-11-10T00:00:00Z", "end": "2026-11-11T00:00:00Z"}})
    covered = {"accuracy": 0, "precision": 0, "recall": 0, "f1": 0}
    errors = []
    for i, part in enumerate(parts):
        report = _estimates(sqlite_url, job, RECENT_DAYS[0] + timedelta(days=i + 1))[0]["v1"]
        y, p = part["label"], part["predicted"]
        tp, fp, fn = int(((y == 1) & (p == 1)).sum()), int(((y == 0) & (p == 1)).sum()), int(((y == 1) & (p == 0)).sum())
        realised = {"accuracy": float((y == p).mean()), "precision": tp / (tp + fp), "recall": tp / (tp + fn),
                    "f1": 2 * tp / (2 * tp + fp + fn)}
        estimated = {"accuracy": report.accuracy, **report.per_class["1"]}
        for name, value in realised.items():
            covered[name] += estimated[name].lower <= value <= estimated[name].upper
        errors.append(report.accuracy.value - realised["accuracy"])
    print("coverage of the 95% intervals over", windows, "windows:", covered)
    assert all(hits >= 0.85 * windows for hits in covered.values()), covered
    assert abs(float(np.mean(errors))) < 0.01  # unbiased


def test_calibration_drift_shows_as_the_gap_on_the_labelled_window(db_url) -> None:
    """Evaluated at T with label_delay 1d: the window [T-2d, T-1d) is labelled now; it is estimated
    with the map of T-1d (reference: the window labelled then) and compared with what happened."""
    rng = np.random.default_rng(5)
    calibrated_day = _draw(rng, 1500, RECENT_DAYS[0], 24)
    drifted_day = _draw(rng, 1500, RECENT_DAYS[1], 24, distort=0.3)  # far more positives than scores say
    _write(db_url, [("v1", calibrated_day), ("v1", drifted_day)])
    job = _job({"reference": {"kind": "previous_window"}}, label_delay="1d")
    reports, problems = _estimates(db_url, job, RECENT_DAYS[2] + timedelta(days=1))
    assert not problems
    check = reports["v1"].check
    assert check.window_start == RECENT_DAYS[1] and check.labeled_predictions == 1500
    realised = float((drifted_day["label"] == drifted_day["predicted"]).mean())
    assert check.realised_accuracy == pytest.approx(realised)
    assert check.gap < -5 * check.standard_error and check.gap < -0.1  # missed positives: far less correct
    # The calibrated day, seen from the day after: its estimate (map of its own day before, which
    # has no data) cannot be made; a job whose reference is the calibrated day itself agrees.
    reports, _ = _estimates(db_url, job, RECENT_DAYS[1] + timedelta(days=1))
    assert reports["v1"].check is None
    fixed = _job({"reference": {"kind": "baseline", "start": "2026-11-12T00:00:00Z", "end": "2026-11-13T00:00:00Z"}},
                 label_delay="1d")
    reports, _ = _estimates(db_url, fixed, RECENT_DAYS[1] + timedelta(days=1))
    check = reports["v1"].check
    assert check.window_start == RECENT_DAYS[0] and abs(check.gap) < 3 * check.standard_error


def test_unscored_predictions_scores_outside_0_1_and_a_version_without_reference(db_url) -> None:
    rng = np.random.default_rng(1)
    reference = _draw(rng, 300, REFERENCE_START, 24)
    recent = _draw(rng, 200, RECENT_DAYS[0], 24)
    _write(db_url, [("v1", reference), ("v1", recent), ("v2", recent)])
    engine = connect(db_url)
    with engine.begin() as conn:
        import sqlalchemy as sa

        conn.execute(sa.text("UPDATE predictions SET score = NULL WHERE prediction_id LIKE 'v1-1112%' AND score < 0.05"))
        conn.execute(sa.text("UPDATE predictions SET score = 1.5 WHERE prediction_id IN "
                             "(SELECT prediction_id FROM predictions WHERE model_version = 'v2' ORDER BY prediction_id LIMIT 1)"))
    engine.dispose()
    job = _job({"reference": {"kind": "baseline", "start": "2026-11-10T00:00:00Z", "end": "2026-11-11T00:00:00Z",
                              "version": "v1"}})
    reports, problems = _estimates(db_url, job, RECENT_DAYS[1])
    assert reports["v1"].unscored > 0 and reports["v1"].predictions + reports["v1"].unscored == 200
    assert "v2" not in reports
    [problem] = problems
    assert str(problem).startswith("job 'cbpe' estimate version 'v2': scores range from ")
    assert str(problem).endswith(" to 1.5, not probabilities in [0, 1]: no estimate; fix the score column")
    per_version = _job({"reference": {"kind": "baseline", "start": "2026-11-10T00:00:00Z", "end": "2026-11-11T00:00:00Z"}})
    engine = connect(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE predictions SET score = 0.5 WHERE score > 1"))
    engine.dispose()
    reports, problems = _estimates(db_url, per_version, RECENT_DAYS[1])
    assert "v2" not in reports and "v1" in reports
    assert len(problems) == 1 and "has no labelled, scored predictions of this version" in str(problems[0])


@pytest.mark.parametrize("estimate, message", [
    ({"calibration": "isotonic"}, "needs a reference to learn the calibration from"),
    ({"calibrated": True, "bins": 1}, "bins"),
    ({"calibrated": True, "window": "0s"}, "window must be longer than 0"),
])
def test_estimate_settings_are_checked(estimate, message) -> None:
    from evaljobs.config import parse_config
    from evaljobs.errors import ConfigError

    text = ("jobs: [{name: j, model: m, task: binary, positive_label: 1, window: 1d, schedule: '0 * * * *', "
            f"estimate: {estimate!r}}}]").replace("'", '"').replace('"0 * * * *"', "'0 * * * *'")
    with pytest.raises(ConfigError) as error:
        parse_config(text.replace("True", "true"))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_multiclass_estimate_says_what_it_needs() -> None:
    from evaljobs.config import parse_config
    from evaljobs.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        parse_config("jobs: [{name: j, model: m, task: multiclass, window: 1d, schedule: '0 * * * *', "
                     "estimate: {calibrated: true}}]")
    assert "a multiclass estimate needs one probability column per class" in str(error.value)


def test_score_bins_match_the_sql_fragment(engine_url) -> None:
    import sqlalchemy as sa

    from evaljobs.db import sqlfiles

    scores = [0.0, 1e-9, 0.05, 0.1, 0.29, 0.3, 0.7, 0.95, 0.999999, 1.0]
    engine = connect(engine_url, create=True)
    fragment = sqlfiles.render("fragments/score_bin", {}, dialect=engine.dialect.name)
    double = dialect_of(engine.dialect.name).float_type
    with engine.connect() as conn:
        got = [conn.execute(sa.text(f"SELECT {fragment} FROM (SELECT CAST(:s AS {double}) AS score) t"),
                            {"s": s, "bins": 20}).scalar() for s in scores]
    engine.dispose()
    assert got == [cbpe.score_bin(s, 20) for s in scores]
    assert math.isclose(cbpe.score_bin(0.29, 100), 28)  # floor(0.29 * 100) in doubles, as SQL does


def test_a_table_reference_calibrates_every_version(engine_url) -> None:
    """reference: {kind: table}: a labelled hold-out set with the job's score and label columns."""
    rng = np.random.default_rng(8)
    holdout = _draw(rng, 800, REFERENCE_START, 24, distort=0.8)
    recent = _draw(rng, 500, RECENT_DAYS[0], 24)
    _write(engine_url, [("v1", recent), ("v2", recent)])
    engine = connect(engine_url)
    dbdata.create_table(engine, "holdout", {"score": "DOUBLE PRECISION", "label": "INTEGER"})
    dbdata.insert(engine, "holdout", [{"score": float(s), "label": int(y)}
                                      for s, y in zip(holdout["score"], holdout["label"])])
    engine.dispose()
    job = _job({"reference": {"kind": "table", "table": "holdout"}, "calibration": "histogram", "bins": 10})
    reports, problems = _estimates(engine_url, job, RECENT_DAYS[1])
    assert not problems and set(reports) == {"v1", "v2"}
    bins = np.array([cbpe.score_bin(s, 10) for s in holdout["score"]])
    mapped = cbpe.histogram_binning(np.bincount(bins, minlength=10).tolist(),
                                    np.bincount(bins, holdout["label"], 10).astype(int).tolist())
    calibrated = np.array([mapped.values[cbpe.score_bin(s, 10)] for s in recent["score"]])
    expected_tp = float(calibrated[recent["predicted"] == 1].sum())
    for report in reports.values():
        assert report.reference.kind == "table" and report.reference.rows == 800
        assert report.confusion["true_positives"] == pytest.approx(expected_tp, rel=COUNT_TOLERANCE)
        ece = sum(abs(holdout["score"][bins == b].sum() - holdout["label"][bins == b].sum()) for b in range(10)) / 800
        assert report.reference_calibration_error == pytest.approx(ece, rel=1e-9)
    missing = _job({"reference": {"kind": "table", "table": "no_such_table"}})
    reports, problems = _estimates(engine_url, missing, RECENT_DAYS[1])
    assert reports == {} and len(problems) == 1 and "no_such_table" in str(problems[0])
