"""``make screenshot``: the README's pictures of the HTML pages, from the demo data at a fixed time.

Builds the demo database under .demo/screenshot/ (history ending at :data:`NOW`, so the picture
changes only when the code does), backfills the fraud job, writes its report and the canary's
gate page, and has headless Chromium (dev/browser.py) draw each one into docs/.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import yaml

from dev import browser, demo
from evaljobs import cli
from evaljobs.demodata import build

NOW = datetime(2026, 3, 15, 7, 0, tzinfo=timezone.utc)
WORK = demo.DEMO_DIR / "screenshot"
DOCS = Path("docs")


def main() -> int:
    WORK.mkdir(parents=True, exist_ok=True)
    database = f"sqlite:///{WORK / 'demo.db'}"
    (WORK / "demo.db").unlink(missing_ok=True)
    config = yaml.safe_load(Path("schedules.yaml").read_text())
    config["database"] = database
    config.pop("pushgateway", None)
    config_path = WORK / "schedules.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    print(build(database, now=NOW, days=demo.DEMO_DAYS))
    demo.backfill_history(str(config_path), NOW, [demo.REPORT_JOB])
    pages = {"report": WORK / "report.html", "gate": WORK / "gate.html"}
    if demo.write_report(str(config_path), NOW, pages["report"]) != 0:
        return 1
    # The gate of the canary against the champion on the last window the history holds.
    cli.main(["gate", demo.REPORT_JOB, "--config", str(config_path), "--candidate", "v3-canary", "--baseline", "v2",
              "--at", NOW.replace(hour=6, minute=30).isoformat(), "--html", str(pages["gate"])])
    failed = False
    for name, page in pages.items():
        check = browser.check_page(page, DOCS / f"{name}.png")
        problems = check.console_errors + check.external_requests + [c["title"] for c in check.undrawn_charts]
        print(f"{check.screenshot}: {len(check.charts)} chart(s) drawn"
              + (f"; problems: {problems}" if problems else ""))
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.pop("EVALJOBS_DATABASE_URL", None)
    sys.exit(main())
