"""Realised vs estimated accuracy over the demo's windows (the README's table).

Builds the demo database (14 days to 2026-11-25 06:30 UTC, SQLite in a temporary directory,
or the URL given), evaluates a shipped job (fraud-daily unless ``--job`` names another, e.g.
intent-6h) once per window length, and prints per version the estimate of the recent window
``[T - window, T)`` made at ``T`` beside the accuracy realised there, which the evaluation at
``T + label_delay`` finds. ``z`` is the difference in standard errors of the estimate.

    .venv/bin/python -m dev.estimate_windows [--job NAME] [DATABASE_URL]
"""

from __future__ import annotations

import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from evaljobs import demodata
from evaljobs.config import load_config
from evaljobs.ops.runner import Runner
from evaljobs.windows import parse_timestamp

NOW = parse_timestamp("2026-11-25T06:30:00Z")
DAYS = 14


def main(argv: list[str]) -> int:
    name = "fraud-daily"
    if argv[:1] == ["--job"]:
        name, argv = argv[1], argv[2:]
    with tempfile.TemporaryDirectory() as directory:
        url = argv[0] if argv else f"sqlite:///{Path(directory) / 'demo.db'}"
        demodata.build(url, now=NOW, days=DAYS)
        config = load_config(Path(__file__).resolve().parents[1] / "schedules.yaml", environ={"EVALJOBS_DATABASE_URL": url})
        job = config.job(name)
        steps = int(timedelta(days=DAYS - 1) / job.window)
        with Runner(config) as runner:
            runs = {NOW - job.window * d: {v.model_version: v for v in runner.evaluate(job, NOW - job.window * d).versions}
                    for d in range(steps, -1, -1)}
    print(f"{'recent window (estimated at its end)':38} {'version':10} {'preds':>5}  {'estimated [95%]':>22}  "
          f"{'realised':>8}  {'labelled':>8}  {'z':>6}")
    inside = compared = 0
    for at, versions in runs.items():
        later = runs.get(at + job.label_delay, {})
        for version, result in sorted(versions.items()):
            estimate = result.estimate
            if estimate is None or estimate.accuracy.value is None:
                continue
            accuracy = estimate.accuracy
            realised = later.get(version)
            value = realised.metrics.accuracy if realised is not None and realised.metrics else None
            z = "-" if value is None else f"{(value - accuracy.value) / accuracy.standard_error:+.2f}"
            if value is not None:
                compared += 1
                inside += accuracy.lower <= value <= accuracy.upper
            print(f"{estimate.window_start:%Y-%m-%d %H:%M} .. {estimate.window_end:%m-%d %H:%M}     {version:10} "
                  f"{estimate.predictions:5d}  {accuracy.value:.3f} [{accuracy.lower:.3f}, {accuracy.upper:.3f}]  "
                  f"{'not yet' if value is None else f'{value:.3f}':>8}  "
                  f"{realised.labeled_predictions if realised is not None else '-':>8}  {z:>6}")
    print(f"\nrealised accuracy within the 95% interval of its estimate: {inside} of {compared} windows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
