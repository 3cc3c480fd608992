"""Where a gate's verdict goes: a Markdown summary (a CI job summary) and JUnit XML (one test case per check)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from evaljobs.sinks.files import write_atomically
from evaljobs.ops.gate import ERROR, FAIL, PASS, SKIPPED, GateReport

_MARK = {PASS: "✅ pass", FAIL: "❌ fail", SKIPPED: "⏭️ skipped", ERROR: "⚠️ error"}


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
