"""``evaljobs gate``: pass or fail a model version in CI, on thresholds from ``schedules.yaml``.

The candidate (and optionally a baseline) version is evaluated over the job's window at
``--at`` by the same :func:`evaljobs.ops.runner.evaluate_job` as every other command; then each
configured threshold becomes one check (one JUnit test case):

- ``min_labeled_predictions``: the candidate has at least that many labelled predictions;
- ``min_accuracy``: accuracy at least that, reported with its Wilson score interval;
- ``min_recall``: macro recall, or the recall of named classes (each with its Wilson interval);
- ``max_drift_psi``: the largest Population Stability Index over the candidate's features
  (read from the drift metrics, see :data:`DRIFT_PSI_SOURCES`);
- ``max_regression``: the candidate is not worse than the baseline by more than a margin;
- regression jobs: ``max_mae``, ``max_rmse``, ``min_r2``, and ``max_regression: {mae: ...}``,
  where the MAE difference gets Welch's interval (the absolute errors' variance comes from the
  same sums: ``var|e| = mean(e^2) - mean(|e|)^2``).

The threshold checks compare the point estimate with the threshold and report the interval
(saying whether it lies on one side of the threshold or straddles it). The regression check
is where noise would cause false failures, so it fails only on a **significant** regression:
Newcombe's hybrid score interval (method 10, built from the two Wilson intervals) for the
difference ``baseline - candidate`` must lie entirely above the margin. With no margin that
is the usual test of "significantly worse" at the configured confidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from scipy.stats import norm
from scipy.stats import t as student_t

from evaljobs import exposition
from evaljobs.config import Gate
from evaljobs.errors import ConfigError, EvaljobsError
from evaljobs.records import JobResult, VersionResult
from evaljobs.windows import Window, span

PASS, FAIL, SKIPPED, ERROR = "pass", "fail", "skipped", "error"


# ---- statistics ----------------------------------------------------------------------------
def z_value(confidence: float) -> float:
    """The two-sided normal quantile of a confidence level (1.959964 for 0.95)."""
    return float(norm.ppf(0.5 + confidence / 2))


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson's score interval of a binomial proportion; None without trials.

    Equals ``scipy.stats.binomtest(k, n).proportion_ci(confidence, method="wilson")``.
    """
    if trials <= 0:
        return None
    z = z_value(confidence)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(successes_a: int, trials_a: int, successes_b: int, trials_b: int,
                      confidence: float = 0.95) -> tuple[float, float] | None:
    """Newcombe's hybrid score interval (1998, method 10) for ``p_a - p_b``; None without trials.

    Equals statsmodels' ``confint_proportions_2indep(..., method="newcomb")``.
    """
    a = wilson_interval(successes_a, trials_a, confidence)
    b = wilson_interval(successes_b, trials_b, confidence)
    if a is None or b is None:
        return None
    p_a, p_b = successes_a / trials_a, successes_b / trials_b
    difference = p_a - p_b
    low = difference - math.sqrt((p_a - a[0]) ** 2 + (b[1] - p_b) ** 2)
    high = difference + math.sqrt((a[1] - p_a) ** 2 + (p_b - b[0]) ** 2)
    return low, high


def welch_interval(mean_a: float, variance_a: float, n_a: int, mean_b: float, variance_b: float, n_b: int,
                   confidence: float = 0.95) -> tuple[float, float] | None:
    """Welch's interval for ``mean_a - mean_b`` from two samples' means and (n - 1) variances.

    Equals ``scipy.stats.ttest_ind(a, b, equal_var=False).confidence_interval(confidence)``;
    None with fewer than two observations on a side.
    """
    if n_a < 2 or n_b < 2:
        return None
    share_a, share_b = variance_a / n_a, variance_b / n_b
    difference = mean_a - mean_b
    error = math.sqrt(share_a + share_b)
    if error == 0:
        return difference, difference
    # Welch-Satterthwaite degrees of freedom, with the shares scaled to their largest so that
    # tiny variances do not underflow to 0 / 0.
    scale = max(share_a, share_b)
    a, b = share_a / scale, share_b / scale
    freedom = (a + b) ** 2 / (a * a / (n_a - 1) + b * b / (n_b - 1))
    half = float(student_t.ppf(0.5 + confidence / 2, freedom)) * error
    return difference - half, difference + half


def absolute_error_moments(version: VersionResult) -> tuple[float, float, int] | None:
    """(mean, sample variance, n) of a regression version's absolute errors, from its metrics."""
    metrics = version.regression
    if metrics is None:
        return None
    n = metrics.labeled
    spread = max(metrics.mse - metrics.mae ** 2, 0.0) * n / (n - 1) if n > 1 else 0.0
    return metrics.mae, spread, n


# ---- drift hook ----------------------------------------------------------------------------
def psi_from_drift_metrics(version: VersionResult) -> Mapping[str, float] | None:
    """PSI per feature from the version's published drift families, if any.

    Drift (issue 3) publishes ``model_drift_score{feature, method}`` through
    ``exposition.VERSION_EXTENSIONS``; this reads the ``method="psi"`` samples, so the gate
    needs no knowledge of how drift is computed.
    """
    scores = {}
    for family in exposition.version_families(version):
        if family.name != "model_drift_score":
            continue
        for sample in family.samples:
            if sample.labels.get("method") == "psi" and "feature" in sample.labels:
                scores[sample.labels["feature"]] = sample.value
    return scores or None


#: Where ``max_drift_psi`` finds PSI values: functions of a version returning
#: ``{feature: psi}``, or None when they know of no drift. The first answer wins.
DRIFT_PSI_SOURCES: list[Callable[[VersionResult], Mapping[str, float] | None]] = [psi_from_drift_metrics]


# ---- checks --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """One threshold: one row of the Markdown table, one JUnit test case."""

    name: str        # stable test-case name, e.g. "min_recall[fraud]"
    title: str       # what is measured, for people
    outcome: str     # pass | fail | skipped | error
    candidate: str   # the candidate's value (with interval)
    baseline: str    # the baseline's value, where compared
    threshold: str
    message: str     # one sentence: why it passed or failed
    # The numbers behind the text, for charts (``gate --html``); None where a check has none.
    value: float | None = None                       # the candidate's ratio (or largest PSI)
    interval: tuple[float, float] | None = None      # its Wilson interval
    baseline_value: float | None = None
    baseline_interval: tuple[float, float] | None = None
    limit: float | None = None                       # the threshold (a minimum, a maximum, or a margin)
    difference: float | None = None                  # max_regression: how much worse the candidate is
    difference_interval: tuple[float, float] | None = None  # its interval (Newcombe; Welch for MAE)


@dataclass
class GateReport:
    """Every check of one gate run."""

    job: str
    candidate: str
    baseline: str | None
    window: Window
    confidence: float
    checks: list[Check] = field(default_factory=list)
    evaluated_at: datetime | None = None

    @property
    def passed(self) -> bool:
        return all(c.outcome in (PASS, SKIPPED) for c in self.checks)

    def count(self, outcome: str) -> int:
        return sum(1 for c in self.checks if c.outcome == outcome)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _with_interval(value: float | None, interval: tuple[float, float] | None) -> str:
    if value is None:
        return "-"
    return _ratio(value) + (f" [{interval[0]:.4f}, {interval[1]:.4f}]" if interval else "")


def _side(interval: tuple[float, float] | None, threshold: float) -> str:
    if interval is None:
        return ""
    if interval[0] >= threshold:
        return "the whole interval is above the threshold"
    if interval[1] < threshold:
        return "the whole interval is below the threshold"
    return "the interval straddles the threshold: more labelled data would settle it"


def _correct(version: VersionResult) -> int:
    return sum(n for (actual, predicted), n in version.confusion.items() if actual == predicted)


def _class_counts(version: VersionResult, cls: str) -> tuple[int, int]:
    """(true positives, support) of one class."""
    support = sum(n for (actual, _), n in version.confusion.items() if actual == cls)
    return version.confusion.get((cls, cls), 0), support


def pick_version(result: JobResult, wanted: str | None, role: str) -> VersionResult:
    """The version called ``wanted`` (or the only one in the window) from a job result."""
    names = [v.model_version for v in result.versions]
    window = span(result.window.start, result.window.end)
    if wanted is None:
        if len(names) == 1:
            return result.versions[0]
        if not names:
            raise EvaljobsError(f"job {result.job!r}: no predictions in the window {window}",
                                "check --at and the job's window and label_delay")
        raise ConfigError(f"job {result.job!r}: the window {window} has versions {', '.join(names)}",
                          f"say which one with --{role}")
    for version in result.versions:
        if version.model_version == wanted:
            return version
    raise EvaljobsError(f"job {result.job!r}: {role} version {wanted!r} has no predictions in the window {window}",
                        f"versions there: {', '.join(names) or 'none'}")


def check_gate(gate: Gate, result: JobResult, candidate_name: str | None = None,
               baseline_name: str | None = None) -> GateReport:
    """Evaluate every configured threshold of ``gate`` on ``result`` (see the module docstring)."""
    candidate = pick_version(result, candidate_name, "candidate")
    baseline = pick_version(result, baseline_name, "baseline") if baseline_name else None
    if baseline is not None and baseline.model_version == candidate.model_version:
        raise ConfigError(f"candidate and baseline are the same version {candidate.model_version!r}",
                          "compare two different versions")
    confidence = gate.confidence
    level = f"{confidence:.0%}"
    report = GateReport(result.job, candidate.model_version, baseline.model_version if baseline else None,
                        result.window, confidence, evaluated_at=result.window.evaluated_at)
    checks = report.checks
    metrics = candidate.metrics

    if gate.min_labeled_predictions is not None:
        n, minimum = candidate.labeled_predictions, gate.min_labeled_predictions
        checks.append(Check(
            "min_labeled_predictions", "labelled predictions", PASS if n >= minimum else FAIL,
            f"{n:,}", f"{baseline.labeled_predictions:,}" if baseline else "", f">= {minimum:,}",
            f"{n:,} labelled predictions" + (" (enough)" if n >= minimum else f", fewer than the {minimum:,} required"),
        ))

    if gate.min_accuracy is not None:
        threshold = gate.min_accuracy
        if metrics is None:
            checks.append(Check("min_accuracy", "accuracy", FAIL, "-", "", f">= {threshold:.4f}",
                                "no labelled predictions: accuracy cannot be computed"))
        else:
            interval = wilson_interval(_correct(candidate), candidate.labeled_predictions, confidence)
            base = base_value = base_interval = None
            if baseline is not None and baseline.metrics is not None:
                base_value = baseline.metrics.accuracy
                base_interval = wilson_interval(_correct(baseline), baseline.labeled_predictions, confidence)
                base = _with_interval(base_value, base_interval)
            ok = metrics.accuracy >= threshold
            checks.append(Check(
                "min_accuracy", "accuracy", PASS if ok else FAIL, _with_interval(metrics.accuracy, interval),
                base or "", f">= {threshold:.4f}",
                f"accuracy {metrics.accuracy:.4f} is {'at or above' if ok else 'below'} {threshold:.4f}; "
                f"{_side(interval, threshold)} ({level} Wilson)",
                value=metrics.accuracy, interval=interval, baseline_value=base_value,
                baseline_interval=base_interval, limit=threshold,
            ))

    recall = gate.min_recall
    if recall is not None and recall.macro is not None:
        threshold = recall.macro
        value = metrics.macro.recall if metrics else None
        ok = value is not None and value >= threshold
        base = _ratio(baseline.metrics.macro.recall) if baseline and baseline.metrics else ""
        checks.append(Check(
            "min_recall", "macro recall", PASS if ok else FAIL, _ratio(value), base, f">= {threshold:.4f}",
            "no labelled predictions: recall cannot be computed" if value is None else
            f"macro recall {value:.4f} is {'at or above' if ok else 'below'} {threshold:.4f} "
            "(the unweighted mean of per-class recall, scikit-learn average='macro')",
            value=value, baseline_value=baseline.metrics.macro.recall if baseline and baseline.metrics else None,
            limit=threshold,
        ))
    for cls, threshold in sorted((recall.per_class if recall else {}).items()):
        hits, support = _class_counts(candidate, cls)
        name = f"min_recall[{cls}]"
        if support == 0:
            checks.append(Check(name, f"recall of class {cls}", FAIL, "-", "", f">= {threshold:.4f}",
                                f"no labelled predictions of class {cls!r}: its recall cannot be computed"))
            continue
        value = hits / support
        interval = wilson_interval(hits, support, confidence)
        base, base_value, base_interval = "", None, None
        if baseline is not None:
            b_hits, b_support = _class_counts(baseline, cls)
            if b_support:
                base_value, base_interval = b_hits / b_support, wilson_interval(b_hits, b_support, confidence)
                base = _with_interval(base_value, base_interval)
        ok = value >= threshold
        checks.append(Check(
            name, f"recall of class {cls}", PASS if ok else FAIL, _with_interval(value, interval), base,
            f">= {threshold:.4f}",
            f"recall of class {cls} {value:.4f} ({hits:,} of {support:,}) is {'at or above' if ok else 'below'} "
            f"{threshold:.4f}; {_side(interval, threshold)} ({level} Wilson)",
            value=value, interval=interval, baseline_value=base_value, baseline_interval=base_interval,
            limit=threshold,
        ))

    if gate.max_drift_psi is not None:
        checks.append(_drift_check(candidate, gate.max_drift_psi))

    margins = gate.max_regression
    if margins is not None:
        if margins.accuracy is not None:
            checks.append(_regression_check(
                "max_regression[accuracy]", "accuracy vs baseline", candidate, baseline, margins.accuracy,
                confidence, lambda v: (_correct(v), v.labeled_predictions)))
        if margins.recall is not None:
            if baseline is None:
                checks.append(_regression_check("max_regression[recall]", "recall vs baseline", candidate, None,
                                                margins.recall, confidence, lambda v: (0, 0)))
            else:
                classes = sorted({a for (a, _) in candidate.confusion} | {a for (a, _) in baseline.confusion})
                for cls in classes:
                    checks.append(_regression_check(
                        f"max_regression[recall:{cls}]", f"recall of class {cls} vs baseline", candidate, baseline,
                        margins.recall, confidence, lambda v, c=cls: _class_counts(v, c)))
    checks.extend(_error_checks(gate, candidate, baseline))
    return report


# ---- regression jobs -------------------------------------------------------------------------
def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _error_checks(gate: Gate, candidate: VersionResult, baseline: VersionResult | None) -> list[Check]:
    """max_mae, max_rmse, min_r2 and max_regression.mae of a regression job."""
    checks = []
    for name, title, attribute, threshold, upper in (
            ("max_mae", "mean absolute error", "mae", gate.max_mae, True),
            ("max_rmse", "root mean squared error", "rmse", gate.max_rmse, True),
            ("min_r2", "R2", "r2", gate.min_r2, False)):
        if threshold is None:
            continue
        metrics = candidate.regression
        value = getattr(metrics, attribute) if metrics else None
        base = baseline.regression if baseline is not None else None
        bound = f"{'<=' if upper else '>='} {threshold:.4g}"
        if value is None:
            checks.append(Check(name, title, FAIL, "-", _number(getattr(base, attribute) if base else None), bound,
                                f"no {'labelled predictions' if metrics is None else 'two labelled predictions'}: "
                                f"{title} cannot be computed"))
            continue
        ok = value <= threshold if upper else value >= threshold
        side = ("at or below" if ok else "above") if upper else ("at or above" if ok else "below")
        checks.append(Check(name, title, PASS if ok else FAIL, _number(value),
                            _number(getattr(base, attribute)) if base else "", bound,
                            f"{title} {value:.4g} is {side} {threshold:.4g} ({metrics.labeled:,} labelled predictions)",
                            value=value, baseline_value=getattr(base, attribute) if base else None, limit=threshold))
    margins = gate.max_regression
    if margins is not None and margins.mae is not None:
        checks.append(_mae_regression_check(candidate, baseline, margins.mae, gate.confidence))
    return checks


def _mae_regression_check(candidate: VersionResult, baseline: VersionResult | None, margin: float,
                          confidence: float) -> Check:
    name, title, threshold = "max_regression[mae]", "MAE vs baseline", f"rise <= {margin:.4g}"
    if baseline is None:
        return Check(name, title, SKIPPED, "", "", threshold, "no --baseline given: nothing to compare with")
    c, b = absolute_error_moments(candidate), absolute_error_moments(baseline)
    interval = welch_interval(*c, *b, confidence) if c and b else None
    if interval is None:
        return Check(name, title, SKIPPED, _number(c[0] if c else None), _number(b[0] if b else None), threshold,
                     "fewer than two labelled predictions on one side: nothing to compare")
    rise = c[0] - b[0]
    low, high = interval
    significant_beyond_margin = low > margin
    if significant_beyond_margin:
        verdict = f"significantly worse than the baseline by more than {margin:.4g}"
    elif rise > margin:
        verdict = (f"worse than the baseline by more than {margin:.4g}, but not significantly "
                   "(the interval reaches the margin): passed, more labelled data would settle it")
    elif low > 0:
        verdict = "significantly worse than the baseline, but within the margin"
    elif high < 0:
        verdict = "significantly better than the baseline"
    else:
        verdict = "not significantly different from the baseline"
    return Check(name, title, FAIL if significant_beyond_margin else PASS, _number(c[0]), _number(b[0]), threshold,
                 f"MAE rise {rise:+.4g} ({confidence:.0%} Welch interval [{low:+.4g}, {high:+.4g}]): {verdict}",
                 value=c[0], baseline_value=b[0], limit=margin, difference=rise, difference_interval=interval)


def _drift_check(candidate: VersionResult, threshold: float) -> Check:
    scores = None
    for source in DRIFT_PSI_SOURCES:
        scores = source(candidate)
        if scores:
            break
    if not scores:
        return Check("max_drift_psi", "largest feature PSI", ERROR, "-", "", f"<= {threshold:.4f}",
                     "no PSI drift scores for the candidate: configure drift for this job (an evaljobs with "
                     "drift support is needed), or remove max_drift_psi from the gate")
    feature, worst = max(scores.items(), key=lambda item: item[1])
    ok = worst <= threshold
    return Check("max_drift_psi", "largest feature PSI", PASS if ok else FAIL, f"{worst:.4f} ({feature})", "",
                 f"<= {threshold:.4f}",
                 f"largest PSI {worst:.4f} (feature {feature}) is {'within' if ok else 'above'} {threshold:.4f} "
                 f"over {len(scores)} feature(s)", value=worst, limit=threshold)


def _regression_check(name: str, title: str, candidate: VersionResult, baseline: VersionResult | None,
                      margin: float, confidence: float,
                      counts: Callable[[VersionResult], tuple[int, int]]) -> Check:
    threshold = f"drop <= {margin:.4f}"
    if baseline is None:
        return Check(name, title, SKIPPED, "", "", threshold, "no --baseline given: nothing to compare with")
    c_hits, c_trials = counts(candidate)
    b_hits, b_trials = counts(baseline)
    if c_trials == 0 or b_trials == 0:
        return Check(name, title, SKIPPED, "-", "-", threshold,
                     "no labelled predictions on one side: nothing to compare")
    c_value, b_value = c_hits / c_trials, b_hits / b_trials
    drop = b_value - c_value
    low, high = newcombe_interval(b_hits, b_trials, c_hits, c_trials, confidence)
    level = f"{confidence:.0%}"
    significant_beyond_margin = low > margin
    if significant_beyond_margin:
        verdict = f"significantly worse than the baseline by more than {margin:.4f}"
    elif drop > margin:
        verdict = (f"worse than the baseline by more than {margin:.4f}, but not significantly "
                   "(the interval reaches the margin): passed, more labelled data would settle it")
    elif low > 0:
        verdict = "significantly worse than the baseline, but within the margin"
    elif high < 0:
        verdict = "significantly better than the baseline"
    else:
        verdict = "not significantly different from the baseline"
    c_interval = wilson_interval(c_hits, c_trials, confidence)
    b_interval = wilson_interval(b_hits, b_trials, confidence)
    return Check(
        name, title, FAIL if significant_beyond_margin else PASS,
        _with_interval(c_value, c_interval),
        _with_interval(b_value, b_interval),
        threshold,
        f"drop {drop:+.4f} ({level} Newcombe interval [{low:+.4f}, {high:+.4f}]): {verdict}",
        value=c_value, interval=c_interval, baseline_value=b_value, baseline_interval=b_interval,
        limit=margin, difference=drop, difference_interval=(low, high),
    )
