"""Self-contained HTML pages with charts: ``evaljobs report`` (a job's stored results over time)
and the page helpers ``evaljobs gate --html`` uses (:mod:`evaljobs.sinks.gatereport`).

Charts are Plotly figures; the page inlines plotly.js once (no CDN, no network: the file opens
offline, e.g. as a CI artefact). Plotly is the optional extra ``report``; without it the
commands say ``pip install 'evaljobs[report]'``.

The job report draws only what the results store holds (:meth:`ResultsStore.report_rows`:
each window's stored record, as ``to_dict()`` wrote it); nothing is evaluated again. Numbers a
record lacks are not drawn, and record fields this module does not know (new metric groups,
e.g. regression or estimated performance) are drawn generically as series over time.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from evaljobs.config import Gate
from evaljobs.drift.catalogue import TESTS
from evaljobs.errors import ConfigError
from evaljobs.quality.latency import histogram_quantile
from evaljobs.sinks.files import write_atomically
from evaljobs.windows import iso

#: The ModelAccuracyLow alert's threshold in prometheus/evaljobs.rules.yml (a test keeps them equal).
ACCURACY_ALERT_THRESHOLD = 0.9
#: Drift colour scale: log2 of score-vs-threshold, clipped to +-this (0 = at the threshold).
DRIFT_SEVERITY_CLIP = 3.0

INSTALL_HINT = "pip install 'evaljobs[report]'"

#: Record fields drawn by the dedicated charts (or not series at all); every other numeric field
#: of a record is drawn by :func:`extra_series_figures`.
KNOWN_FIELDS = frozenset({
    "job", "model", "model_version", "task", "window_start", "window_end", "labels_as_of",
    "window_predictions", "labeled_predictions", "label_coverage", "predictions_total", "confusion",
    "accuracy", "per_class", "macro", "micro", "weighted", "drift", "latency", "scored_predictions",
})


def plotly_modules() -> tuple[Any, Any, Any]:
    """``(plotly.graph_objects, plotly.subplots.make_subplots, plotly.offline)``, or a one-line error."""
    try:
        import plotly.graph_objects as go
        import plotly.offline as offline
        from plotly.subplots import make_subplots
    except ImportError:
        raise ConfigError("the HTML report needs Plotly, which is not installed", INSTALL_HINT) from None
    return go, make_subplots, offline


# ---- the page --------------------------------------------------------------------------------
@dataclass
class Section:
    """One block of the page: a heading, one line saying what it shows, and a chart and/or HTML."""

    title: str
    explanation: str
    figure: Any = None          # a plotly Figure
    body: str = ""              # extra HTML (tables), already escaped
    height: int = 360


_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #1f2328;
       background: #f6f8fa; }
header { background: #24292f; color: #fff; padding: 16px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 2px 0; color: #d0d7de; font-size: 14px; }
main { max-width: 1280px; margin: 0 auto; padding: 12px 28px 40px; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; margin: 14px 0; padding: 10px 16px; }
section h2 { font-size: 17px; margin: 4px 0; }
section p.what { margin: 2px 0 6px; color: #57606a; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border-bottom: 1px solid #d8dee4; padding: 3px 10px; text-align: left; }
td.nowrap { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.drift { color: #cf222e; font-weight: 600; }
.ok { color: #1a7f37; }
.fail { color: #cf222e; font-weight: 600; }
footer { color: #57606a; font-size: 12px; text-align: center; padding-bottom: 20px; }
"""


def page(title: str, lines: Sequence[str], sections: Sequence[Section], footer: str) -> str:
    """One HTML document: plotly.js inlined once in the head, then one ``<section>`` per block.

    Each chart is a ``<div class="chart">``: the browser test checks every one of them drew.
    """
    _go, _subplots, offline = plotly_modules()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        # The whole library, inline: the page works offline and from a file URL.
        f'<script type="text/javascript">{offline.get_plotlyjs()}</script>',
        "</head><body>",
        f"<header><h1>{html.escape(title)}</h1>",
        *(f"<p>{html.escape(line)}</p>" for line in lines),
        "</header><main>",
    ]
    for index, section in enumerate(sections):
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>"
                     f'<p class="what">{html.escape(section.explanation)}</p>')
        parts.append(section.body)  # tables first: the numbers, then their picture
        if section.figure is not None:
            section.figure.update_layout(height=section.height, template="plotly_white",
                                         margin=dict(l=60, r=30, t=50, b=50))
            chart = section.figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{index}",
                                           config={"displaylogo": False, "responsive": True})
            parts.append(f'<div class="chart" data-title="{html.escape(section.title)}">{chart}</div>')
        parts.append("</section>")
    parts += ["</main>", f"<footer>{html.escape(footer)}</footer>", "</body></html>"]
    return "\n".join(parts)


def write(path: str | os.PathLike[str], document: str, option: str = "--html") -> Path:
    """Write a page atomically (a reader sees the old page or the new one)."""
    return write_atomically(path, document.encode("utf-8"), "the HTML report", option)


def table(header: Sequence[str], rows: Iterable[Sequence[tuple[str, str]]]) -> str:
    """An HTML table; each cell is ``(text, css class)`` and the text is escaped here."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="{css}">{html.escape(text)}</td>' for text, css in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def colours(names: Sequence[str]) -> dict[str, str]:
    """One colour per name, stable within a page (Plotly's qualitative palette)."""
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
               "#bcbd22", "#7f7f7f"]
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def ratio(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def small(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if value and abs(value) < 1e-3 else f"{value:.3f}"


# ---- the job report: data from the store ---------------------------------------------------------
@dataclass
class Point:
    """One version's stored record of one window."""

    window_start: datetime
    window_end: datetime
    record: dict[str, Any]


@dataclass
class JobReport:
    """A job's stored results in a time range, by version (oldest window first)."""

    job: str
    model: str
    since: datetime
    until: datetime
    gate: Gate | None
    versions: dict[str, list[Point]] = field(default_factory=dict)
    windows: list[dict[str, Any]] = field(default_factory=list)   # the job rows: status, error

    @classmethod
    def from_rows(cls, job: str, model: str, since: datetime, until: datetime, gate: Gate | None,
                  rows: Iterable[dict[str, Any]]) -> "JobReport":
        """Group :meth:`ResultsStore.report_rows` by version (versions in order of first appearance)."""
        report = cls(job, model, since, until, gate)
        for row in rows:
            if row["row_kind"] == "job":
                report.windows.append(row)
            elif row["record"] is not None:
                report.versions.setdefault(row["model_version"], []).append(
                    Point(row["window_start"], row["window_end"], row["record"]))
        return report

    @property
    def colour(self) -> dict[str, str]:
        return colours(list(self.versions))

    def latest(self, version: str, needs: str) -> Point | None:
        """The version's latest window whose record has a non-empty ``needs`` field."""
        return next((p for p in reversed(self.versions[version]) if p.record.get(needs)), None)

    def has_interval(self, path: Sequence[str]) -> bool:
        """Whether ``path`` is an interval section (``value``, ``lower``, ``upper``) in some record."""
        for points in self.versions.values():
            for point in points:
                value: Any = point.record
                for key in path:
                    value = value.get(key) if isinstance(value, dict) else None
                if is_interval(value):
                    return True
        return False

    def latest_each(self, needs: str, versions: Iterable[str] | None = None) -> dict[str, Point]:
        """:meth:`latest` of each version (of ``versions``, default all); versions without one left out."""
        found = {v: self.latest(v, needs) for v in (self.versions if versions is None else versions)}
        return {v: p for v, p in found.items() if p is not None}


def _value(record: dict[str, Any], path: Sequence[str]) -> float | None:
    value: Any = record
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _series(points: Sequence[Point], path: Sequence[str]) -> tuple[list[datetime], list[float | None]]:
    return [p.window_end for p in points], [_value(p.record, path) for p in points]


def p95_seconds(record: dict[str, Any]) -> float | None:
    """p95 latency of a stored record's histogram (PromQL's interpolation; see histogram_quantile)."""
    latency = record.get("latency")
    if not latency:
        return None
    finite = [b for b in latency["buckets"] if b["le"] != "+Inf"]
    return histogram_quantile(0.95, tuple(float(b["le"]) for b in finite), tuple(int(b["count"]) for b in finite),
                              int(latency["count"]))


def drift_severity(feature: dict[str, Any]) -> float | None:
    """log2 of how far a feature's deciding number is past its threshold (> 0 = drift), clipped.

    Distances: ``score / threshold``; tests: ``threshold / p-value`` (a smaller p is stronger).
    None when the feature was not compared.
    """
    method, threshold = feature.get("method"), feature.get("threshold")
    statistic = (feature.get("statistics") or {}).get(method) if method else None
    if statistic is None or not threshold:
        return None
    if method in TESTS:
        p = statistic.get("p_value")
        ratio_ = math.inf if p == 0 else (threshold / p if p is not None else None)
    else:
        ratio_ = statistic["score"] / threshold
    if ratio_ is None:
        return None
    if ratio_ <= 0:
        return -DRIFT_SEVERITY_CLIP
    return max(-DRIFT_SEVERITY_CLIP, min(DRIFT_SEVERITY_CLIP, math.log2(ratio_))) if math.isfinite(ratio_) \
        else DRIFT_SEVERITY_CLIP


def _deciding(feature: dict[str, Any]) -> str:
    """The deciding number, short: ``0.248`` (a distance) or ``p=3.4e-07`` (a test); ``*`` marks drift."""
    method = feature.get("method")
    statistic = (feature.get("statistics") or {}).get(method) if method else None
    if statistic is None:
        return "-"
    mark = "*" if feature.get("detected") else ""
    if method in TESTS:
        p = statistic.get("p_value")
        return "p=-" if p is None else (f"p={p:.2g}" if p < 0.01 else f"p={p:.2f}") + mark
    return f"{statistic['score']:.3g}{mark}"


def is_interval(value: Any) -> bool:
    """A stored estimate with its interval: ``{"value", "lower", "upper", ...}``."""
    return isinstance(value, dict) and {"value", "lower", "upper"} <= set(value)


def numeric_fields(record: dict[str, Any], prefix: tuple[str, ...] = (), depth: int = 3) -> list[tuple[str, ...]]:
    """Paths of the numeric leaves of a record that no dedicated chart draws (nested dicts included;
    an interval section is one path)."""
    out: list[tuple[str, ...]] = []
    for key, value in record.items():
        if not prefix and (key in KNOWN_FIELDS or is_histogram(value)):
            continue
        path = (*prefix, key)
        if is_interval(value):
            out.append(path)
        elif isinstance(value, dict) and depth > 1:
            out.extend(numeric_fields(value, path, depth - 1))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append(path)
    return out


# ---- the job report: charts ----------------------------------------------------------------------
def quality_figure(report: JobReport) -> Any:
    """Accuracy, macro recall, macro F1 (and recall of classes the gate names) per version over time."""
    go, make_subplots, _ = plotly_modules()
    gate = report.gate
    per_class = sorted(gate.min_recall.per_class) if gate and gate.min_recall else []
    panels: list[tuple[str, tuple[str, ...], list[tuple[float, str, str]]]] = [
        ("accuracy", ("accuracy",), [(ACCURACY_ALERT_THRESHOLD, "alert 0.9", "#cf222e")]
         + ([(gate.min_accuracy, f"gate {gate.min_accuracy:g}", "#bf8700")] if gate and gate.min_accuracy else [])),
        ("macro recall", ("macro", "recall"),
         [(gate.min_recall.macro, f"gate {gate.min_recall.macro:g}", "#bf8700")]
         if gate and gate.min_recall and gate.min_recall.macro is not None else []),
        ("macro F1", ("macro", "f1"), []),
    ]
    for cls in per_class:
        threshold = gate.min_recall.per_class[cls]
        panels.append((f"recall of class {cls}", ("per_class", cls, "recall"),
                       [(threshold, f"gate {threshold:g}", "#bf8700")]))
    if not any(_value(p.record, ("accuracy",)) is not None for pts in report.versions.values() for p in pts):
        return None
    figure = make_subplots(rows=1, cols=len(panels), subplot_titles=[t for t, _, _ in panels], shared_yaxes=True,
                           horizontal_spacing=0.03)
    colour = report.colour
    for column, (title, path, lines) in enumerate(panels, start=1):
        for version, points in report.versions.items():
            x, y = _series(points, path)
            figure.add_trace(go.Scatter(
                x=x, y=y, mode="lines+markers", name=version, legendgroup=version, showlegend=column == 1,
                line=dict(color=colour[version]), customdata=[p.record.get("labeled_predictions") for p in points],
                hovertemplate=f"{version} {title} %{{y:.4f}} (%{{customdata}} labelled)<br>%{{x}}<extra></extra>",
            ), row=1, col=column)
        for value, label, line_colour in lines:
            figure.add_hline(y=value, line=dict(color=line_colour, dash="dash", width=1.5), row=1, col=column,
                             annotation_text=label, annotation_position="bottom left",
                             annotation_font=dict(color=line_colour, size=11))
    figure.update_layout(legend=dict(orientation="h", y=-0.15))
    return figure


def coverage_figure(report: JobReport) -> Any:
    """Label coverage (labelled / all predictions of the window) per version over time."""
    go, _, _ = plotly_modules()
    figure = go.Figure()
    drawn = False
    for version, points in report.versions.items():
        x, y = _series(points, ("label_coverage",))
        labelled = [p.record.get("labeled_predictions") for p in points]
        total = [p.record.get("window_predictions") for p in points]
        drawn = drawn or any(v is not None for v in y)
        figure.add_trace(go.Scatter(
            x=x, y=y, mode="lines+markers", name=version, line=dict(color=report.colour[version]),
            customdata=list(zip(labelled, total)),
            hovertemplate=f"{version}: %{{y:.1%}} (%{{customdata[0]}} of %{{customdata[1]}})<br>%{{x}}<extra></extra>",
        ))
    if not drawn:
        return None
    figure.add_hline(y=0.5, line=dict(color="#cf222e", dash="dash", width=1.5), annotation_text="alert 0.5",
                     annotation_position="bottom left", annotation_font=dict(color="#cf222e", size=11))
    figure.update_yaxes(range=[0, 1.02], tickformat=".0%")
    return figure


def latency_figure(report: JobReport) -> Any:
    """The latest window's latency histogram per version, and p95 (and mean) per version over time."""
    go, make_subplots, _ = plotly_modules()
    latest = report.latest_each("latency")
    if not latest:
        return None
    figure = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55], horizontal_spacing=0.08,
                           subplot_titles=["latest window: predictions per latency bucket",
                                           "p95 (solid) and mean (dotted) over time"])
    colour = report.colour
    _add_bucket_bars(figure, latest, "latency", colour, " s")
    for version, points in report.versions.items():
        x = [p.window_end for p in points]
        p95 = [p95_seconds(p.record) for p in points]
        mean = [_value(p.record, ("latency", "mean_seconds")) for p in points]
        if all(v is None for v in p95):
            continue
        figure.add_trace(go.Scatter(x=x, y=p95, mode="lines+markers", name=version, legendgroup=version,
                                    showlegend=version not in latest, line=dict(color=colour[version]),
                                    hovertemplate=f"{version} p95 %{{y:.3f}} s<br>%{{x}}<extra></extra>"),
                         row=1, col=2)
        figure.add_trace(go.Scatter(x=x, y=mean, mode="lines", name=f"{version} mean", legendgroup=version,
                                    showlegend=False, line=dict(color=colour[version], dash="dot", width=1),
                                    hovertemplate=f"{version} mean %{{y:.3f}} s<br>%{{x}}<extra></extra>"),
                         row=1, col=2)
    figure.add_hline(y=1.0, line=dict(color="#cf222e", dash="dash", width=1.5), row=1, col=2,
                     annotation_text="alert p95 1 s", annotation_position="top left",
                     annotation_font=dict(color="#cf222e", size=11))
    figure.update_layout(barmode="group", legend=dict(orientation="h", y=-0.2))
    figure.update_yaxes(title_text="predictions", row=1, col=1)
    figure.update_yaxes(title_text="seconds", rangemode="tozero", row=1, col=2)
    return figure


def is_histogram(value: Any) -> bool:
    """A stored histogram section: ``{"buckets": [{"le", "count"}, ...], "count", ...}`` (cumulative)."""
    return (isinstance(value, dict) and isinstance(value.get("buckets"), list) and bool(value["buckets"])
            and all(isinstance(b, dict) and "le" in b and "count" in b for b in value["buckets"]))


def _add_bucket_bars(figure: Any, latest: dict[str, Point], key: str, colour: dict[str, str], unit: str = "",
                     row: int = 1, col: int = 1) -> None:
    """Bars of each version's latest histogram ``key``: observations per bucket (not cumulative).

    Empty buckets at either end say nothing: one of them is kept on each side, for scale.
    """
    go, _, _ = plotly_modules()
    bars: dict[str, tuple[list[str], list[int]]] = {}
    for version, point in latest.items():
        buckets = point.record[key]["buckets"]
        labels, counts, previous = [], [], 0
        for index, bucket in enumerate(buckets):
            below = f"{float(buckets[index - 1]['le']):g}" if index else "-"
            labels.append(f"≤ {float(bucket['le']):g}{unit}" if bucket["le"] != "+Inf" else f"> {below}{unit}")
            counts.append(int(bucket["count"]) - previous)
            previous = int(bucket["count"])
        bars[version] = (labels, counts)
    used = [i for _labels, counts in bars.values() for i, n in enumerate(counts) if n]
    first, last = (max(0, min(used) - 1), max(used) + 2) if used else (0, None)
    for version, (labels, counts) in bars.items():
        figure.add_trace(go.Bar(x=labels[first:last], y=counts[first:last], name=version, legendgroup=version,
                                 marker_color=colour[version],
                                 hovertemplate=f"{version} %{{x}}: %{{y}}<extra></extra>"), row=row, col=col)


def histogram_figures(report: JobReport) -> list[Section]:
    """A chart per histogram section of the records other than latency (e.g. a regression job's
    signed prediction errors): the latest window's counts per bucket, and the mean over time."""
    go, make_subplots, _ = plotly_modules()
    keys: list[str] = []
    for points in report.versions.values():
        for point in points:
            keys += [k for k, v in point.record.items() if k != "latency" and k not in keys and is_histogram(v)]
    sections = []
    for key in keys:
        latest = report.latest_each(key)
        figure = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55], horizontal_spacing=0.08,
                               subplot_titles=["latest window: observations per bucket", "mean over time"])
        _add_bucket_bars(figure, latest, key, report.colour)
        for version, points in report.versions.items():
            means = [(p.record[key]["sum"] / p.record[key]["count"])
                     if is_histogram(p.record.get(key)) and p.record[key].get("count") and "sum" in p.record[key]
                     else None for p in points]
            if any(m is not None for m in means):
                figure.add_trace(go.Scatter(x=[p.window_end for p in points], y=means, mode="lines+markers",
                                            name=version, legendgroup=version, showlegend=version not in latest,
                                            line=dict(color=report.colour[version]),
                                            hovertemplate=f"{version} mean %{{y:.4g}}<br>%{{x}}<extra></extra>"),
                                 row=1, col=2)
        figure.update_layout(barmode="group", legend=dict(orientation="h", y=-0.2))
        title = key.replace("_", " ")
        sections.append(Section(
            f"{title[0].upper()}{title[1:]}: histogram",
            f"The records' {key!r} histogram: the latest window's observations per bucket (empty buckets at "
            "the ends left out), and the mean (sum / count) per window.", figure, height=340))
    return sections


def _drift_versions(report: JobReport) -> list[str]:
    return [v for v, points in report.versions.items()
            if any((p.record.get("drift") or {}).get("features") for p in points)]


def drift_reference(report: JobReport) -> str:
    """How the stored records describe the drift reference (the latest one, if it changed)."""
    for version in reversed(_drift_versions(report)):
        point = report.latest(version, "drift")
        if point is not None:
            reference = point.record["drift"]["reference"]
            rows = f", {reference['rows']:,} rows" if reference.get("rows") is not None else ""
            return f"{reference['description']}{rows}"
    return "-"


def drift_heatmap(report: JobReport) -> Any:
    """Feature x window per version, coloured by the deciding score against its threshold."""
    go, make_subplots, _ = plotly_modules()
    versions = _drift_versions(report)
    if not versions:
        return None
    figure = make_subplots(rows=len(versions), cols=1, shared_xaxes=True, vertical_spacing=0.12,
                           subplot_titles=[f"{v}" for v in versions])
    scale = [[0.0, "#1a7f37"], [0.5, "#f6f8fa"], [1.0, "#cf222e"]]
    for row, version in enumerate(versions, start=1):
        points = [p for p in report.versions[version] if (p.record.get("drift") or {}).get("features")]
        features: list[str] = []
        for point in points:
            for feature in point.record["drift"]["features"]:
                if feature["feature"] not in features:
                    features.append(feature["feature"])
        z, text = [], []
        for name in features:
            z_row, text_row = [], []
            for point in points:
                feature = next((f for f in point.record["drift"]["features"] if f["feature"] == name), None)
                severity = drift_severity(feature) if feature else None
                z_row.append(severity)
                text_row.append("" if feature is None else _deciding(feature))
            z.append(z_row)
            text.append(text_row)
        figure.add_trace(go.Heatmap(
            x=[p.window_end for p in points], y=features, z=z, text=text, texttemplate="%{text}",
            textfont=dict(size=10), colorscale=scale, zmin=-DRIFT_SEVERITY_CLIP, zmax=DRIFT_SEVERITY_CLIP,
            zmid=0, showscale=row == 1, xgap=2, ygap=2,
            colorbar=dict(title=dict(text="vs threshold", side="right"), tickvals=[-3, -1, 0, 1, 3],
                          ticktext=["1/8", "1/2", "at", "2x", "8x"]),
            hovertemplate=f"{version} %{{y}}<br>%{{x}}<br>%{{text}}<extra></extra>",
        ), row=row, col=1)
    return figure


def confusion_figure(report: JobReport) -> Any:
    """The latest window's confusion matrix of each version (counts; rows actual, columns predicted)."""
    go, make_subplots, _ = plotly_modules()
    latest = report.latest_each("confusion")
    if not latest:
        return None
    titles = [f"{v}, window ending {p.window_end:%Y-%m-%d %H:%M}" for v, p in latest.items()]
    figure = make_subplots(rows=1, cols=len(latest), subplot_titles=titles, horizontal_spacing=0.08)
    for column, (version, point) in enumerate(latest.items(), start=1):
        cells = point.record["confusion"]
        classes = sorted({c["actual"] for c in cells} | {c["predicted"] for c in cells})
        counts = {(c["actual"], c["predicted"]): c["count"] for c in cells}
        z = [[counts.get((a, p), 0) for p in classes] for a in classes]
        figure.add_trace(go.Heatmap(
            x=classes, y=classes, z=z, text=z, texttemplate="%{text}", colorscale="Blues", showscale=False,
            xgap=1, ygap=1,
            hovertemplate=f"{version}<br>actual %{{y}}, predicted %{{x}}: %{{z}}<extra></extra>",
        ), row=1, col=column)
        figure.update_xaxes(title_text="predicted", type="category", row=1, col=column)
        figure.update_yaxes(title_text="actual" if column == 1 else None, type="category", autorange="reversed",
                            row=1, col=column)
    return figure


def drift_details(report: JobReport) -> tuple[Any, str]:
    """The latest window's drift per version: a table of every feature, and reference vs current
    distributions (shares of the stored bins or categories)."""
    go, make_subplots, _ = plotly_modules()
    latest = report.latest_each("drift", _drift_versions(report))
    if not latest:
        return None, ""
    # The job's latest window with drift: versions retired before it are history, not its state.
    newest = max(p.window_end for p in latest.values())
    latest = {v: p for v, p in latest.items() if p.window_end == newest}
    rows = []
    panels: list[tuple[str, str, dict[str, Any]]] = []
    for version, point in latest.items():
        for feature in point.record["drift"]["features"]:
            statistic = (feature.get("statistics") or {}).get(feature.get("method") or "") or {}
            detected = feature.get("detected")
            rows.append([
                (version, ""), (f"{point.window_end:%Y-%m-%d %H:%M}", ""), (feature["feature"], ""),
                (feature["kind"], ""), (feature.get("method") or "-", ""),
                (small(statistic.get("score")), "num"), (small(statistic.get("p_value")), "num"),
                ("-" if feature.get("threshold") is None else f"{feature['threshold']:g}", "num"),
                (ratio(feature.get("null_ratio")), "num"),
                ({True: "DRIFT", False: "no", None: "-"}[detected], "drift" if detected else ""),
            ])
            if feature.get("buckets"):
                panels.append((version, feature["feature"], feature))
    body = table(["version", "window end", "feature", "kind", "method", "score", "p-value", "threshold",
                  "null ratio", "drift"], rows)
    if not panels:
        return None, body
    columns = min(3, len(panels))
    grid_rows = math.ceil(len(panels) / columns)
    figure = make_subplots(rows=grid_rows, cols=columns, vertical_spacing=0.32 / max(1, grid_rows - 1) if grid_rows > 1
                           else 0.1, horizontal_spacing=0.06,
                           subplot_titles=[f"{v}: {f}" + (" (DRIFT)" if d.get("detected") else "")
                                           for v, f, d in panels])
    for index, (version, name, feature) in enumerate(panels):
        row, column = index // columns + 1, index % columns + 1
        buckets = feature["buckets"]
        reference_total = sum(b["reference"] for b in buckets) or 1
        current_total = sum(b["current"] for b in buckets) or 1
        names = [b["bucket"] for b in buckets]
        for sample, total, bar_colour in (("reference", reference_total, "#8c959f"),
                                          ("current", current_total, report.colour[version])):
            figure.add_trace(go.Bar(
                x=names, y=[b[sample] / total for b in buckets], name=sample, legendgroup=sample,
                showlegend=False, marker_color=bar_colour,
                customdata=[b[sample] for b in buckets],
                hovertemplate=f"{version} {name} {sample}<br>%{{x}}: %{{y:.1%}} (%{{customdata}})<extra></extra>",
            ), row=row, col=column)
        figure.update_yaxes(tickformat=".0%", row=row, col=column)
        figure.update_xaxes(type="category", tickfont=dict(size=9), row=row, col=column)
    figure.update_layout(barmode="group", height=300 * grid_rows)
    return figure, body


_GROUP_TITLES = {"scores": "score metrics", "other": "other numbers"}


def extra_groups(report: JobReport) -> dict[str, list[tuple[str, ...]]]:
    """Numeric record fields without a dedicated chart, grouped by the record section holding them.

    Score metrics (ROC AUC, log loss, Brier) are one group; each nested record section (e.g. a
    regression block, an estimate, the estimate's calibration check) is its own group, named by
    its dotted path; loose top-level numbers are "other". Interval sections (``value``, ``lower``,
    ``upper``) are one field, listed first in their group.
    """
    groups: dict[str, list[tuple[str, ...]]] = {}
    for points in report.versions.values():
        for point in points:
            for path in numeric_fields(point.record):
                key = "scores" if path[0] in ("roc_auc", "log_loss", "brier_score") else \
                    (".".join(path[:-1]) if len(path) > 1 else "other")
                if path not in groups.setdefault(key, []):
                    groups[key].append(path)
    for key, paths in groups.items():
        intervals = [p for p in paths if report.has_interval(p)]
        groups[key] = intervals + [p for p in paths if p not in intervals]
    return groups


def _translucent(colour: str, alpha: float = 0.2) -> str:
    """``#rrggbb`` as ``rgba(r, g, b, alpha)``: an interval band under its line."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def constant_fields(report: JobReport, paths: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], float]:
    """The fields whose value is the same in every stored window (two or more): a line says nothing."""
    out = {}
    for path in paths:
        values = {v for points in report.versions.values() for v in _series(points, path)[1] if v is not None}
        count = sum(1 for points in report.versions.values() for v in _series(points, path)[1] if v is not None)
        if len(values) == 1 and count >= 2 and not report.has_interval(path):
            out[path] = values.pop()
    return out


def extra_series_figures(report: JobReport) -> list[Section]:
    """One chart per group of :func:`extra_groups`: each field per version over time (intervals as a
    band around the value). A field whose path, less its top-level section, names a realised metric
    (``estimate.accuracy`` -> ``accuracy``) is drawn beside it, dashed, so that an estimate and
    the realised number can be compared. Fields constant over the range are named, not drawn."""
    go, make_subplots, _ = plotly_modules()
    sections = []
    for group, all_paths in extra_groups(report).items():
        constants = constant_fields(report, all_paths)
        paths = [p for p in all_paths if p not in constants]
        if not paths:
            continue
        prefix = len(group.split(".")) if group not in ("scores", "other") else 0
        columns = min(4, len(paths))
        grid_rows = math.ceil(len(paths) / columns)
        figure = make_subplots(rows=grid_rows, cols=columns, subplot_titles=[".".join(p[prefix:]) for p in paths],
                               horizontal_spacing=0.06, vertical_spacing=0.3 / grid_rows)
        compared = False
        for index, path in enumerate(paths):
            row, column = index // columns + 1, index % columns + 1
            realised = path[1:] if group not in ("scores", "other") else ()
            name = ".".join(path)
            for version, points in report.versions.items():
                colour = report.colour[version]
                interval = report.has_interval(path)
                x, y = _series(points, (*path, "value") if interval else path)
                if all(v is None for v in y):
                    continue
                if interval:
                    _, low = _series(points, (*path, "lower"))
                    _, high = _series(points, (*path, "upper"))
                    band = [(t, lo, hi) for t, lo, hi in zip(x, low, high) if lo is not None and hi is not None]
                    if band:
                        times, lows, highs = (list(c) for c in zip(*band))
                        figure.add_trace(go.Scatter(
                            x=times + times[::-1], y=highs + lows[::-1], fill="toself", mode="none",
                            fillcolor=_translucent(colour), showlegend=False, legendgroup=version,
                            hoverinfo="skip"), row=row, col=column)
                figure.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=version, legendgroup=version,
                                            showlegend=index == 0, line=dict(color=colour),
                                            hovertemplate=f"{version} {name} %{{y:.4g}}<extra></extra>"),
                                 row=row, col=column)
                if realised:
                    rx, ry = _series(points, realised)
                    if any(v is not None for v in ry):
                        compared = True
                        figure.add_trace(go.Scatter(
                            x=rx, y=ry, mode="lines", name=f"{version} realised {'.'.join(realised)}",
                            legendgroup=version, showlegend=False, line=dict(color=colour, dash="dash", width=1),
                            hovertemplate=f"{version} realised {'.'.join(realised)} %{{y:.4g}}<extra></extra>",
                        ), row=row, col=column)
        figure.update_layout(legend=dict(orientation="h", y=-0.25 / grid_rows))
        title = _GROUP_TITLES.get(group, group.replace(".", " ").replace("_", " "))
        if group == "scores":
            explanation = "ROC AUC, log loss and Brier score of the positive-class score per version and window."
        else:
            notes = (["shaded: its interval"] if any(report.has_interval(p) for p in paths) else []) \
                + (["dashed: the realised metric of the same name"] if compared else [])
            explanation = (f"Every stored number of the records' {group!r} section per version and window"
                           + (f" ({'; '.join(notes)})" if notes else "") + ".")
        if constants:
            explanation += " The same in every window: " + ", ".join(
                f"{'.'.join(p[prefix:])} = {v:g}" for p, v in constants.items()) + "."
        sections.append(Section(f"{title[0].upper()}{title[1:]} over time", explanation, figure,
                                height=40 + 300 * grid_rows))
    return sections


def windows_table(report: JobReport) -> str:
    """Windows that were not plainly ok (empty, partial, failed), with why."""
    rows = [[(f"{w['window_start']:%Y-%m-%d %H:%M} .. {w['window_end']:%Y-%m-%d %H:%M}", "nowrap"),
             (w["status"], "fail" if w["status"] == "failed" else ""), (w.get("error") or "", "")]
            for w in report.windows if w["status"] != "ok"]
    if not rows:
        return "<p>Every window in the range was evaluated without problems.</p>"
    return table(["window (UTC)", "status", "why"], rows)


def job_report(report: JobReport) -> str:
    """The job report's HTML document (see the module docstring)."""
    sections: list[Section] = []
    gate = report.gate
    gate_text = ""
    if gate is not None:
        parts = []
        if gate.min_accuracy is not None:
            parts.append(f"accuracy >= {gate.min_accuracy:g}")
        if gate.min_recall and gate.min_recall.macro is not None:
            parts.append(f"macro recall >= {gate.min_recall.macro:g}")
        for cls, value in sorted((gate.min_recall.per_class if gate.min_recall else {}).items()):
            parts.append(f"recall of class {cls} >= {value:g}")
        gate_text = f"; gate thresholds (dashed, amber): {', '.join(parts)}" if parts else ""
    figure = quality_figure(report)
    if figure is not None:
        sections.append(Section(
            "Accuracy, macro recall and macro F1 per version",
            f"One point per evaluated window (at its end); the ModelAccuracyLow alert fires below "
            f"{ACCURACY_ALERT_THRESHOLD:g} (dashed, red){gate_text}.", figure, height=380))
    figure = coverage_figure(report)
    if figure is not None:
        sections.append(Section(
            "Label coverage", "Share of each window's predictions whose label had arrived when it was evaluated; "
            "ModelLabelCoverageLow fires below 0.5.", figure, height=300))
    figure = latency_figure(report)
    if figure is not None:
        sections.append(Section(
            "Inference latency", "Left: the latest window's predictions per latency bucket (empty buckets above "
            "the slowest left out). Right: p95 per window, "
            "interpolated in the stored buckets as PromQL's histogram_quantile does (off by at most one bucket "
            "width), and the mean; ModelInferenceLatencyHigh fires above 1 s.", figure, height=360))
    figure = drift_heatmap(report)
    if figure is not None:
        versions = len(_drift_versions(report))
        sections.append(Section(
            f"Drift against {drift_reference(report)}",
            "Each feature's deciding method per window: red past its threshold (score / threshold for distances, "
            "threshold / p-value for tests, log scale), green below; each cell shows the score or p-value, "
            "* where drift was detected.",
            figure, height=120 + 170 * versions))
    figure = confusion_figure(report)
    if figure is not None:
        sections.append(Section(
            "Latest confusion matrix per version",
            "Labelled predictions of each version's latest window by actual (rows) and predicted (columns) class.",
            figure, height=380))
    figure, body = drift_details(report)
    if body:
        sections.append(Section(
            "Drift of the latest window, per feature",
            f"The latest window's compared values against {drift_reference(report)}; bars: the reference's (grey) "
            "and the window's shares of the stored bins (numeric) or categories.", figure, body=body,
            height=figure.layout.height if figure is not None else 0))
    sections.extend(histogram_figures(report))
    sections.extend(extra_series_figures(report))
    sections.append(Section("Windows that were not plainly ok",
                            "Empty, partial and failed windows in the range, as the results store records them.",
                            body=windows_table(report)))
    ends = [w["window_end"] for w in report.windows]
    lines = [
        f"model {report.model}; versions {', '.join(report.versions) or 'none'}; {len(report.windows)} window(s) "
        f"ending in ({report.since:%Y-%m-%d %H:%M}, {report.until:%Y-%m-%d %H:%M}] UTC"
        + (f", the latest ending {max(ends):%Y-%m-%d %H:%M} UTC" if ends else ""),
        "From the results store: the numbers each run stored, not evaluated again.",
    ]
    return page(f"evaljobs report: {report.job}", lines, sections,
                "Written by evaljobs report. Charts: Plotly (inlined; the page needs no network).")


def summary_lines(report: JobReport) -> list[str]:
    """What the report shows, for the terminal: the latest window of each version."""
    out = [f"job {report.job}: {len(report.windows)} window(s) ending in ({iso(report.since)}, {iso(report.until)}]"]
    for version, points in report.versions.items():
        last = points[-1].record
        drifted = [f["feature"] for f in (last.get("drift") or {}).get("features", []) if f.get("detected")]
        errors = last.get("regression") or {}
        quality = (f"MAE {errors.get('mae', 0):.4g}, R2 {ratio(errors.get('r2'))}" if errors.get("mae") is not None
                   else f"accuracy {ratio(last.get('accuracy'))}")
        out.append(f"  {version}: {len(points)} window(s); latest ending {points[-1].window_end:%Y-%m-%d %H:%M}: "
                   f"{quality}, coverage {ratio(last.get('label_coverage'))}"
                   + (f", drift in {', '.join(drifted)}" if drifted else ""))
    return out

