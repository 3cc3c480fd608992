"""Where a gate's verdict goes: a Markdown summary (a CI job summary) and JUnit XML (one test case per check)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from evaljobs.sinks.files import write_atomically
from evaljobs.ops.gate import ERROR, FAIL, PASS, SKIPPED, GateReport
from evaljobs.records import JobResult
from evaljobs.sinks import html
from evaljobs.sinks.html import JobReport

_MARK = {PASS: "✅ pass", FAIL: "❌ fail", SKIPPED: "⏭️ skipped", ERROR: "⚠️ error"}
#: The HTML page's words (no emoji: a browser without an emoji font would draw empty boxes).
_WORD = {PASS: "pass", FAIL: "FAIL", SKIPPED: "skipped", ERROR: "ERROR"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(report: GateReport) -> str:
    """A Markdown summary: verdict, what was compared, and one table row per check."""
    failed = report.count(FAIL) + report.count(ERROR)
    verdict = "✅ passed" if report.passed else f"❌ failed ({failed} of {len(report.checks)} checks)"
    window = report.window
    against = f" against baseline **{report.baseline}**" if report.baseline else ""
    lines = [
        f"### evaljobs gate `{report.job}`: {verdict}",
        "",
        f"Candidate **{report.candidate}**{against}, predictions {window.start:%Y-%m-%d %H:%M} .. "
        f"{window.end:%Y-%m-%d %H:%M} UTC, labels as of {window.labels_as_of:%Y-%m-%d %H:%M} UTC. "
        f"Intervals: {report.confidence:.0%} Wilson score (ratios), Newcombe hybrid score (differences)"
        + (", Welch (MAE differences)." if any(c.name == "max_regression[mae]" for c in report.checks) else "."),
        "",
        "| result | check | candidate | baseline | threshold | detail |",
        "|---|---|---|---|---|---|",
    ]
    for check in report.checks:
        lines.append("| " + " | ".join(_cell(x) for x in (
            _MARK[check.outcome], f"`{check.name}` {check.title}", check.candidate, check.baseline or "",
            check.threshold, check.message)) + " |")
    if not report.checks:
        lines.append("| ⏭️ skipped | (no thresholds configured) | | | | add a gate: section to the job |")
    return "\n".join(lines) + "\n"


def junit(report: GateReport, duration_seconds: float = 0.0) -> bytes:
    """JUnit XML: one ``<testsuite>`` for the gate, one ``<testcase>`` per check."""
    counts = {
        "tests": str(len(report.checks)),
        "failures": str(report.count(FAIL)),
        "errors": str(report.count(ERROR)),
        "skipped": str(report.count(SKIPPED)),
    }
    suites = ET.Element("testsuites", name="evaljobs gate", time=f"{duration_seconds:.3f}", **counts)
    suite = ET.SubElement(suites, "testsuite", name=f"evaljobs gate {report.job}", time=f"{duration_seconds:.3f}",
                          timestamp=f"{report.evaluated_at:%Y-%m-%dT%H:%M:%S}" if report.evaluated_at else "",
                          **counts)
    properties = ET.SubElement(suite, "properties")
    for name, value in (("job", report.job), ("candidate", report.candidate), ("baseline", report.baseline or ""),
                        ("window_start", report.window.start.isoformat()), ("window_end", report.window.end.isoformat()),
                        ("labels_as_of", report.window.labels_as_of.isoformat()),
                        ("confidence", f"{report.confidence:g}")):
        ET.SubElement(properties, "property", name=name, value=value)
    for check in report.checks:
        case = ET.SubElement(suite, "testcase", name=check.name, classname=f"evaljobs.gate.{report.job}", time="0")
        detail = (f"{check.title}: candidate {check.candidate or '-'}"
                  + (f", baseline {check.baseline}" if check.baseline else "") + f", threshold {check.threshold}")
        if check.outcome == FAIL:
            ET.SubElement(case, "failure", message=check.message, type="threshold").text = detail
        elif check.outcome == ERROR:
            ET.SubElement(case, "error", message=check.message, type="unavailable").text = detail
        elif check.outcome == SKIPPED:
            ET.SubElement(case, "skipped", message=check.message)
        else:
            ET.SubElement(case, "system-out").text = f"{check.message}\n{detail}"
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


def write(path: str | os.PathLike[str], data: str | bytes, what: str, option: str) -> Path:
    """Write a report file atomically; a SinkError names the option to change."""
    return write_atomically(path, data.encode("utf-8") if isinstance(data, str) else data, f"the {what}", option)


# ---- gate --html ----------------------------------------------------------------------------------
def html_page(report: GateReport, result: JobResult) -> str:
    """A self-contained HTML page of the gate: the checks, the candidate's and baseline's ratios with
    their Wilson intervals against the thresholds, the regressions' Newcombe intervals against their
    margins, and both versions' confusion matrices and drift (the job report's charts)."""
    go, _subplots, _offline = html.plotly_modules()
    level = f"{report.confidence:.0%}"
    # The window's own records, drawn by the job report's charts (and their colours, used throughout).
    compared = [v for v in result.versions if v.model_version in (report.candidate, report.baseline)]
    window = JobReport.from_rows(report.job, result.model, result.window.start, result.window.end, None, [
        {"row_kind": "version", "model_version": v.model_version, "window_start": result.window.start,
         "window_end": result.window.end, "record": v.to_dict()} for v in compared])
    colour = window.colour
    sections = [html.Section(
        "Checks", "One row per configured threshold, as in the Markdown summary and the JUnit report.",
        body=html.table(["result", "check", "candidate", "baseline", "threshold", "detail"], [
            [(_WORD[c.outcome], "fail" if c.outcome in (FAIL, ERROR) else "ok"), (f"{c.name}: {c.title}", ""),
             (c.candidate, "num nowrap"), (c.baseline or "", "num nowrap"), (c.threshold, "nowrap"), (c.message, "")]
            for c in report.checks]))]

    # Minimums (ratios, and R2 of regression jobs): one row each, with the interval where there is one.
    ratios = [c for c in report.checks if c.name.startswith("min_") and c.value is not None and c.limit is not None
              and c.name != "min_labeled_predictions"]
    if ratios:
        figure = go.Figure()
        rows = list(range(len(ratios)))
        for name, values, intervals, offset, symbol in (
                (report.candidate, [c.value for c in ratios], [c.interval for c in ratios], -0.12, "circle"),
                (report.baseline, [c.baseline_value for c in ratios], [c.baseline_interval for c in ratios], 0.12,
                 "diamond")):
            if name is None or all(v is None for v in values):
                continue
            figure.add_trace(go.Scatter(
                x=values, y=[r + offset for r in rows], mode="markers", name=name,
                marker=dict(color=colour[name], size=11, symbol=symbol),
                error_x=_error_bars(values, intervals, colour[name]),
                customdata=[_interval_text(i) for i in intervals],
                hovertemplate=f"{name} %{{x:.4f}} %{{customdata}}<extra></extra>"))
        figure.add_trace(go.Scatter(
            x=[c.limit for c in ratios], y=rows, mode="markers", name="threshold (minimum)",
            marker=dict(symbol="line-ns", size=34, color="#bf8700", line=dict(width=3, color="#bf8700")),
            hovertemplate="threshold %{x:.4f}<extra></extra>"))
        figure.update_yaxes(tickvals=rows, ticktext=[f"{c.title} ({_WORD[c.outcome]})" for c in ratios],
                            autorange="reversed", range=[-0.6, len(ratios) - 0.4])
        figure.update_xaxes(title_text="value", tickformat=".2f")
        figure.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.02))
        with_intervals = any(c.interval for c in ratios)
        sections.append(html.Section(
            "Thresholds: the candidate against each minimum"
            + (f", with {level} Wilson intervals" if with_intervals else ""),
            "Dots: point estimates (the check compares these with the threshold); bars: the Wilson score "
            "intervals; the baseline beside, where one was given.", figure, height=150 + 70 * len(ratios)))

    regressions = [c for c in report.checks if c.difference is not None]
    if regressions:
        figure = go.Figure()
        rows = list(range(len(regressions)))
        failed = [c.outcome == FAIL for c in regressions]
        figure.add_trace(go.Scatter(
            x=[c.difference for c in regressions], y=rows, mode="markers", name="how much worse the candidate is",
            marker=dict(size=11, color=["#cf222e" if f else "#1a7f37" for f in failed]),
            error_x=_error_bars([c.difference for c in regressions], [c.difference_interval for c in regressions],
                                "#57606a"),
            customdata=[_interval_text(c.difference_interval) for c in regressions],
            hovertemplate="drop %{x:+.4f} %{customdata}<extra></extra>"))
        figure.add_trace(go.Scatter(
            x=[c.limit for c in regressions], y=rows, mode="markers", name="margin (fails when the whole interval "
                                                                            "is past it)",
            marker=dict(symbol="line-ns", size=34, color="#bf8700", line=dict(width=3, color="#bf8700")),
            hovertemplate="margin %{x:.4f}<extra></extra>"))
        figure.add_vline(x=0, line=dict(color="#8c959f", width=1))
        figure.update_yaxes(tickvals=rows, ticktext=[f"{c.title} ({_WORD[c.outcome]})" for c in regressions],
                            autorange="reversed", range=[-0.6, len(regressions) - 0.4])
        mae = any(c.name == "max_regression[mae]" for c in regressions)
        figure.update_xaxes(title_text="candidate MAE minus baseline MAE" if mae else
                            "baseline minus candidate (positive: the candidate is worse)",
                            tickformat="+.3g" if mae else "+.2f", zeroline=False)
        figure.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.02))
        method = "Welch" if mae else "Newcombe"
        sections.append(html.Section(
            f"Regression against {report.baseline}: differences with {level} {method} intervals",
            "A check fails only when the whole interval lies beyond its margin: a significant regression, "
            "not noise.", figure, height=170 + 60 * len(regressions)))

    figure = html.confusion_figure(window)
    if figure is not None:
        sections.append(html.Section("Confusion matrices", "Labelled predictions of the window by actual (rows) "
                                     "and predicted (columns) class.", figure, height=380))
    figure, body = html.drift_details(window)
    if body:
        sections.append(html.Section(
            f"Drift against {html.drift_reference(window)}",
            "Every compared value of the window; bars: the reference's (grey) and the window's shares of the "
            "stored bins (numeric) or categories.", figure, body=body,
            height=figure.layout.height if figure is not None else 0))

    failed_count = report.count(FAIL) + report.count(ERROR)
    verdict = "passed" if report.passed else f"failed ({failed_count} of {len(report.checks)} checks)"
    against = f" against baseline {report.baseline}" if report.baseline else ""
    lines = [
        f"Candidate {report.candidate}{against}: {verdict}.",
        f"Predictions {result.window.start:%Y-%m-%d %H:%M} .. {result.window.end:%Y-%m-%d %H:%M} UTC, labels as of "
        f"{result.window.labels_as_of:%Y-%m-%d %H:%M} UTC; intervals at {level} confidence.",
    ]
    return html.page(f"evaljobs gate {report.job}: {verdict}", lines, sections,
                     "Written by evaljobs gate --html. Charts: Plotly (inlined; the page needs no network).")


def _error_bars(values: list[float | None], intervals: list[tuple[float, float] | None], colour: str) -> dict:
    """Plotly asymmetric error bars from intervals (none where a value has no interval)."""
    return dict(type="data", symmetric=False, color=colour, thickness=2, width=6,
                array=[(i[1] - v) if i and v is not None else 0 for v, i in zip(values, intervals)],
                arrayminus=[(v - i[0]) if i and v is not None else 0 for v, i in zip(values, intervals)])


def _interval_text(interval: tuple[float, float] | None) -> str:
    return "" if interval is None else f"[{interval[0]:.4f}, {interval[1]:.4f}]"
