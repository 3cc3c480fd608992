"""``make demo``: build the demo database, run every job of schedules.yaml, say where the metrics went.

Developer tooling, not part of the installed package: the synthetic data itself comes from
:mod:`evaljobs.demodata` (also behind ``evaljobs demo-data``).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from dev import localservices
from evaljobs import cli
from evaljobs.demodata import build

DEMO_DIR = Path(".demo")
DEMO_DATABASE = f"sqlite:///{DEMO_DIR / 'evaljobs-demo.db'}"


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
    print(build(database, now=cli.now_utc()))
    url, origin = _demo_gateway()
    run_args = ["run", "--all", "--explain", "--config", os.environ.get("EVALJOBS_CONFIG", "schedules.yaml")]
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
    return code


if __name__ == "__main__":
    sys.exit(main())
