"""``make demo``: build the demo database, backfill its history into the results store, run every job
of schedules.yaml, write the HTML report of the fraud job, and say where everything went.

Developer tooling, not part of the installed package: the synthetic data itself comes from
:mod:`evaljobs.demodata` (also behind ``evaljobs demo-data``).
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime, timedelta
from pathlib import Path

from dev import localservices
from evaljobs import cli
from evaljobs.demodata import build
from evaljobs.windows import iso

DEMO_DIR = Path(".demo")
DEMO_DATABASE = f"sqlite:///{DEMO_DIR / 'evaljobs-demo.db'}"
DEMO_DAYS = 14
#: The job the demo's report is about: the canary's accuracy drop and its drifted ``amount``.
REPORT_JOB = "fraud-daily"


def backfill_history(config: str, now: datetime, jobs: list[str]) -> None:
    """Evaluate every past window of the demo history into the results store (nothing is pushed)."""
    for job in jobs:
        cli.main(["backfill", job, "--config", config, "--from", iso(now - timedelta(days=DEMO_DAYS)),
                  "--to", iso(now)])


def write_report(config: str, now: datetime, path: Path) -> int:
    """``evaljobs report`` of the demo's job over its history, as an HTML page at ``path``."""
    # Windows end up to the job's label delay (2 days) before their fire time: reach back that far too.
    return cli.main(["report", REPORT_JOB, "--config", config, "--from", iso(now - timedelta(days=DEMO_DAYS + 3)),
                     "--to", iso(now), "--html", str(path)])


def _demo_gateway() -> tuple[str | None, str]:
    """The Pushgateway the demo pushes to, and a sentence that says where it came from."""
    given = os.environ.get("EVALJOBS_PUSHGATEWAY_URL")
    if given:
        return given, "the Pushgateway at $EVALJOBS_PUSHGATEWAY_URL"
    pid_file, url_file = DEMO_DIR / "pushgateway.pid", DEMO_DIR / "pushgateway.url"
    if pid_file.exists() and url_file.exists() and localservices.pid_alive(int(pid_file.read_text())):
        url = url_file.read_text().strip()
        try:
            localservices.wait_until_ready(f"{url}/-/ready", timeout=2)
            return url, "the demo's local Pushgateway (still running from an earlier make demo)"
        except RuntimeError:
            pass
    try:
        gateway = localservices.start_pushgateway(log_path=DEMO_DIR / "pushgateway.log", detach=True)
    except FileNotFoundError:
        return None, "no Pushgateway (none at $EVALJOBS_PUSHGATEWAY_URL and no pushgateway binary installed)"
    pid_file.write_text(str(gateway.process.pid))
    url_file.write_text(gateway.url)
    return gateway.url, "a local Pushgateway the demo started (make demo-stop stops it)"


def _stop_demo_gateway() -> None:
    pid_file = DEMO_DIR / "pushgateway.pid"
    if not pid_file.exists():
        print("no demo Pushgateway is running")
        return
    pid = int(pid_file.read_text())
    if localservices.pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        print(f"stopped the demo Pushgateway (pid {pid})")
    pid_file.unlink()
    (DEMO_DIR / "pushgateway.url").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """Build the demo database, run every job of schedules.yaml, say where the metrics went."""
    args = sys.argv[1:] if argv is None else argv
    if "--stop" in args:
        _stop_demo_gateway()
        return 0
    DEMO_DIR.mkdir(exist_ok=True)
    os.environ.setdefault("EVALJOBS_DATABASE_URL", DEMO_DATABASE)
    database = os.environ["EVALJOBS_DATABASE_URL"]
    config = os.environ.get("EVALJOBS_CONFIG", "schedules.yaml")
    now = cli.now_utc()
    print(build(database, now=now, days=DEMO_DAYS))
    # The history first (stored, not pushed), so the report has a trend; then the live run pushes.
    backfill_history(config, now, [REPORT_JOB])
    url, origin = _demo_gateway()
    run_args = ["run", "--all", "--explain", "--config", config]
    if url:
        os.environ["EVALJOBS_PUSHGATEWAY_URL"] = url
        code = cli.main(run_args)
        where = f"pushed to {origin}: {url}/metrics"
    else:
        textfile_path = DEMO_DIR / "evaljobs.prom"
        code = cli.main([*run_args, "--dry-run", "--textfile", str(textfile_path)])
        where = (f"{origin}: wrote node_exporter textfile-collector metrics to {textfile_path} instead "
                 "(install prometheus-pushgateway, or set EVALJOBS_PUSHGATEWAY_URL, to push)")
    print(f"\nmetrics: {where}")
    report = DEMO_DIR / "report.html"
    if write_report(config, now, report) == 0:
        print(f"report: {report.resolve()} (open it in a browser; it needs no network)")
    return code


if __name__ == "__main__":
    sys.exit(main())
