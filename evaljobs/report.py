"""Human-readable and JSON renderings of job results for the terminal."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from evaljobs.config import Job
from evaljobs.quality.label_delay import DEFAULT_TARGET, Suggestion, format_duration, lookback
from evaljobs.records import JobResult
from evaljobs.windows import Window


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def table(jobs: Iterable[JobResult]) -> str:
    """A fixed-width results table: one row per version, then drift, then job-level notes."""
    jobs = list(jobs)
    header = ("job", "version", "window (UTC)", "preds", "labelled", "coverage",
              "accuracy", "macro F1", "ROC AUC", "avg latency")
    rows: list[Sequence[str]] = []
    notes: list[str] = []
    for job in jobs:
        span = f"{job.window.start:%Y-%m-%d %H:%M} .. {job.window.end:%Y-%m-%d %H:%M}"
        if not job.versions:
            rows.append((job.job, "(none)", span, "0", "0", "-", "-", "-", "-", "-"))
        for v in job.versions:
            m = v.metrics
            rows.append((
                job.job,
                f"{v.model}/{v.model_version}",
                span,
                f"{v.window_predictions:,}",
                f"{v.labeled_predictions:,}",
                _pct(v.label_coverage),
                _num(m.accuracy if m else None),
                _num(m.macro.f1 if m else None),
                _num(v.scores.roc_auc if v.scores else None),
                _seconds(v.latency.mean_seconds if v.latency else None),
            ))
        if job.orphan_labels:
            notes.append(f"{job.job}: {job.orphan_labels} label(s) for unknown prediction ids")
        notes.extend(f"{job.job}: {problem}" for problem in job.problems + job.warnings)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    numeric = {3, 4, 5, 6, 7, 8, 9}

    def line(row: Sequence[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in numeric else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    out = [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]
    out.extend(regression_section(jobs))
    out.extend(segment_section(jobs))
    out.extend(drift_section(jobs))
    out.extend(estimate_section(jobs))
    if notes:
        out.append("")
        out.extend(f"note: {n}" for n in notes)
    return "\n".join(out)


def as_json(jobs: Iterable[JobResult], extra: dict | None = None) -> str:
    """All results as one JSON document."""
    document = {"jobs": [j.to_dict() for j in jobs]}
    if extra:
        document.update(extra)
    return json.dumps(document, indent=2, sort_keys=False)


# ---- regression (issue 12) ---------------------------------------------------------------------
def regression_section(jobs: Iterable[JobResult]) -> list[str]:
    """Lines of a table of the regression jobs' error metrics, one row per version."""
    rows: list[Sequence[str]] = []
    for job in jobs:
        for v in job.versions:
            if v.task != "regression":
                continue
            m = v.regression
            rows.append((job.job, f"{v.model}/{v.model_version}", f"{v.labeled_predictions:,}",
                         _num(m.mae if m else None), _num(m.rmse if m else None),
                         _pct(m.mape if m else None), _num(m.r2 if m else None), _signed(m.mean_error if m else None)))
    if not rows:
        return []
    header = ("regression job", "version", "labelled", "MAE", "RMSE", "MAPE", "R2", "mean error")
    return ["", *_fixed_width(header, rows, {2, 3, 4, 5, 6, 7})]


def segment_section(jobs: Iterable[JobResult]) -> list[str]:
    """Per segmented job: one row per version, segment and value, and what the guard folded."""
    out: list[str] = []
    for job in jobs:
        if not any(v.segments for v in job.versions):
            continue
        regression = job.task == "regression"
        header = ("version", "segment", "value", "preds", "labelled", "coverage",
                  *(("MAE", "RMSE") if regression else ("accuracy", "macro F1")))
        rows: list[Sequence[str]] = []
        for v in job.versions:
            for s in v.segments:
                scores = ((_num(s.regression.mae), _num(s.regression.rmse)) if s.regression else ("-", "-")) \
                    if regression else ((_num(s.metrics.accuracy), _num(s.metrics.macro.f1)) if s.metrics else ("-", "-"))
                rows.append((f"{v.model}/{v.model_version}", s.segment, s.value, f"{s.window_predictions:,}",
                             f"{s.labeled_predictions:,}", _pct(s.label_coverage), *scores))
        folds = [f for f in job.versions[0].segment_folds if f.folded_values]
        folded = "; ".join(f"{f.segment}: {f.folded_values} value(s), {f.folded_predictions:,} predictions "
                           "folded into (other)" for f in folds)
        out += ["", f"segments of {job.job}" + (f" ({folded})" if folded else "")]
        out += _fixed_width(header, rows, {3, 4, 5, 6, 7})
    return out


def explain_section(job: Job, window: Window, suggestions: Sequence[Suggestion]) -> str:
    """``run --explain``: what the window covers, and per version how late labels arrive and
    which label_delay would catch the target share of them."""
    start = window.end - lookback(window, job.label_delay)
    target = suggestions[0].target if suggestions else DEFAULT_TARGET
    lines = [
        "",
        f"window of {job.name}: predictions made {window.start:%Y-%m-%d %H:%M} .. {window.end:%Y-%m-%d %H:%M} UTC "
        f"(window {format_duration(job.window)}, ending label_delay {format_duration(job.label_delay)} before "
        f"{window.evaluated_at:%Y-%m-%d %H:%M}), labels that arrived before {window.labels_as_of:%Y-%m-%d %H:%M}",
        f"label delay of {job.name}: predictions made {start:%Y-%m-%d %H:%M} .. {window.end:%Y-%m-%d %H:%M} UTC; "
        f"the suggested label_delay catches {target:.0%} of their labels that arrived",
    ]
    rows = [(f"{job.model}/{s.model_version}", f"{s.predictions:,}", f"{s.labeled:,}",
             _pct(s.share(s.within_configured, of_labeled=True)),
             format_duration(s.suggested) if s.suggested else "-",
             _pct(s.share(s.within_suggested, of_labeled=True)), _pct(s.share(s.within_suggested, of_labeled=False)))
            for s in suggestions]
    header = ("version", "preds", "labelled", "within label_delay", "suggested", "catches", "of preds")
    lines += _fixed_width(header, rows, {1, 2, 3, 4, 5, 6}) if rows else ["(no predictions in the look-back)"]
    return "\n".join(lines)


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


# ---- drift (issue 3) ---------------------------------------------------------------------------
def _fixed_width(header: Sequence[str], rows: list[Sequence[str]], numeric: set[int]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in numeric else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def _score(value: float | None) -> str:
    return "-" if value is None else (f"{value:.3g}" if abs(value) < 1e-3 and value else f"{value:.3f}")


def drift_section(jobs: Iterable[JobResult]) -> list[str]:
    """Lines of a compact drift table: per job its reference, then one row per version and
    feature with the deciding method's score, p-value, threshold and verdict."""
    out: list[str] = []
    for job in jobs:
        reports = [(v, v.drift) for v in job.versions if v.drift is not None]
        if not reports:
            continue
        reference = reports[0][1].reference
        rows_text = "" if reference.rows is None else f", {reference.rows:,} rows"
        out += ["", f"drift of {job.job} against {reference.description}{rows_text}"]
        header = ("version", "feature", "method", "score", "p-value", "threshold", "nulls", "drift")
        rows: list[Sequence[str]] = []
        for version, report in reports:
            for feature in report.features:
                chosen = feature.statistic(feature.method)
                rows.append((
                    f"{version.model}/{version.model_version}",
                    feature.feature,
                    feature.method or "-",
                    _score(chosen.score if chosen else None),
                    _score(chosen.p_value if chosen else None),
                    "-" if feature.threshold is None else f"{feature.threshold:g}",
                    _pct(feature.null_ratio),
                    {True: "DRIFT", False: "no", None: "-"}[feature.detected],
                ))
        out += _fixed_width(header, rows, {3, 4, 5, 6}) if rows else ["(no feature could be compared)"]
    return out


# ---- estimated performance (issue 13) ----------------------------------------------------------
def _interval(value) -> str:  # type: ignore[no-untyped-def]
    if value.value is None:
        return "-"
    if value.lower is None:
        return f"{value.value:.3f}"
    return f"{value.value:.3f} [{value.lower:.3f}, {value.upper:.3f}]"


def estimate_section(jobs: Iterable[JobResult]) -> list[str]:
    """Lines of the estimate table: per version the recent window's estimated accuracy, F1 and
    ROC AUC with their intervals, the reference's ECE and the calibration-drift gap."""
    out: list[str] = []
    for job in jobs:
        reports = [(v, v.estimate) for v in job.versions if v.estimate is not None]
        if not reports:
            continue
        first = reports[0][1]
        out += ["", f"estimated performance of {job.job} over {first.window_start:%Y-%m-%d %H:%M} .. "
                    f"{first.window_end:%Y-%m-%d %H:%M} UTC (no labels yet; calibration: {first.calibration}, "
                    f"{first.confidence:.0%} intervals)"]
        f1_name = "est. macro F1" if any(r.macro for _, r in reports) else "est. F1"
        header = ("version", "preds", "est. accuracy", f1_name, "est. ROC AUC", "ref. ECE", "realised - est.")
        rows: list[Sequence[str]] = []
        for version, report in reports:
            # Multiclass: the macro F1 (the mean over classes); binary: the positive class's.
            f1 = report.macro.get("f1") if report.macro else (
                next(iter(report.per_class.values()), {}).get("f1") if report.per_class else None)
            gap = report.check.gap if report.check else None
            rows.append((
                f"{version.model}/{version.model_version}",
                f"{report.predictions:,}",
                _interval(report.accuracy),
                _interval(f1) if f1 is not None else "-",
                _interval(report.roc_auc),
                _num(report.reference_calibration_error),
                "-" if gap is None else f"{gap:+.3f}",
            ))
        out += _fixed_width(header, rows, {1, 5, 6})
    return out
