"""Human-readable and JSON renderings of job results for the terminal."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from .records import JobResult


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def table(jobs: Iterable[JobResult]) -> str:
    """A fixed-width results table: one row per version, then job-level notes."""
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
        notes.extend(f"{job.job}: {problem}" for problem in job.problems)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    numeric = {3, 4, 5, 6, 7, 8, 9}

    def line(row: Sequence[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in numeric else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    out = [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]
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
