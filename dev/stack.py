"""``make stack``: a local Pushgateway and Prometheus with the evaljobs rules, fed with the demo.

``python -m evaljobs.stack up`` starts both on free ports on 127.0.0.1 (short scrape and rule
intervals), loads ``prometheus/evaljobs.rules.yml`` through a copy of
``prometheus/prometheus.yml`` pointed at the new gateway, writes the demo data, runs every
job of ``schedules.yaml`` twice (ten days ago, then now, so the counters have moved), waits
until the rules have evaluated and prints the URLs and a few query results.
``python -m evaljobs.stack down`` stops exactly the processes ``up`` started: their pids are
in ``.stack/*.pid``, and a pid is only signalled while its command line is still the one we
started (so a recycled pid is left alone). Not used by evaljobs' own jobs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import yaml

from dev import localservices

REPOSITORY = Path(__file__).resolve().parent.parent
PROMETHEUS_FILES = REPOSITORY / "prometheus"
RULES_FILE = PROMETHEUS_FILES / "evaljobs.rules.yml"
STACK_DIR = Path(".stack")
SERVICES = ("pushgateway", "prometheus")

T = TypeVar("T")


class StackError(RuntimeError):
    """The stack could not be started or queried; the message says what to do."""


# ---- Prometheus configuration and HTTP API ----------------------------------------------------
def prometheus_config(gateway_url: str, rules_file: Path = RULES_FILE, interval: str = "1s") -> str:
    """The shipped ``prometheus/prometheus.yml`` scraping ``gateway_url`` every ``interval``.

    Only the target, the intervals and the (absolute) rules path change, so what is tested
    and demonstrated is the shipped scrape configuration (``honor_labels`` and all).
    """
    config = yaml.safe_load((PROMETHEUS_FILES / "prometheus.yml").read_text(encoding="utf-8"))
    config["global"] = {"scrape_interval": interval, "evaluation_interval": interval}
    config["rule_files"] = [str(Path(rules_file).resolve())]
    target = urllib.parse.urlsplit(gateway_url).netloc
    for scrape in config["scrape_configs"]:
        if scrape["job_name"] == "pushgateway":
            scrape["static_configs"] = [{"targets": [target]}]
    return yaml.safe_dump(config, sort_keys=False)


def query(prometheus_url: str, expr: str) -> list[dict[str, Any]]:
    """An instant query through Prometheus's HTTP API; raises StackError if it does not evaluate."""
    url = f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
        raise StackError(f"query {expr!r} failed: {body.get('errorType')}: {body.get('error')}") from None
    if body.get("status") != "success":
        raise StackError(f"query {expr!r} failed: {body.get('error')}")
    return body["data"]["result"]


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    """Poll ``check`` until it returns something truthy; StackError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


# ---- processes ----------------------------------------------------------------------------------
def _pid_file(directory: Path, service: str) -> Path:
    return directory / f"{service}.pid"


def _url_file(directory: Path, service: str) -> Path:
    return directory / f"{service}.url"


def _started_by_us(pid: int, url: str) -> bool:
    """True if ``pid`` is alive and still the server we started on ``url`` (not a recycled pid)."""
    if not localservices.pid_alive(pid):
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid file
    listen = f"--web.listen-address={urllib.parse.urlsplit(url).netloc}".encode()
    return listen in command


def running(directory: Path = STACK_DIR) -> dict[str, str]:
    """Service name -> URL of the stack's processes that are still running."""
    found = {}
    for service in SERVICES:
        pid_file, url_file = _pid_file(directory, service), _url_file(directory, service)
        if pid_file.exists() and url_file.exists():
            url = url_file.read_text().strip()
            if _started_by_us(int(pid_file.read_text()), url):
                found[service] = url
    return found


def up(directory: Path = STACK_DIR, interval: str = "1s") -> dict[str, str]:
    """Start (or reuse) the stack's Pushgateway and Prometheus; returns service -> URL."""
    directory.mkdir(parents=True, exist_ok=True)
    urls = running(directory)
    if set(urls) == set(SERVICES):
        return urls
    down(directory, quiet=True)  # half a stack: start both afresh
    try:
        gateway = localservices.start_pushgateway(log_path=directory / "pushgateway.log", detach=True)
        _record(directory, gateway)
        shutil.rmtree(directory / "prometheus-data", ignore_errors=True)  # a new stack starts empty
        config = directory / "prometheus.yml"
        config.write_text(prometheus_config(gateway.url, RULES_FILE, interval), encoding="utf-8")
        prometheus = localservices.start_prometheus(config, directory / "prometheus-data",
                                                    log_path=directory / "prometheus.log", detach=True)
        _record(directory, prometheus)
    except FileNotFoundError as exc:
        down(directory, quiet=True)
        raise StackError(f"{exc}; run make system-deps (or scripts/install-system-deps.sh)") from None
    except RuntimeError as exc:
        down(directory, quiet=True)
        raise StackError(f"{exc}; see the logs in {directory}/") from None
    return {"pushgateway": gateway.url, "prometheus": prometheus.url}


def _record(directory: Path, process: localservices.LocalProcess) -> None:
    _pid_file(directory, process.name).write_text(str(process.process.pid))
    _url_file(directory, process.name).write_text(process.url)


def down(directory: Path = STACK_DIR, quiet: bool = False) -> list[str]:
    """Stop the processes ``up`` started (and only those); returns what was stopped."""
    stopped = []
    for service in SERVICES:
        pid_file, url_file = _pid_file(directory, service), _url_file(directory, service)
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text())
        url = url_file.read_text().strip() if url_file.exists() else ""
        if _started_by_us(pid, url):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while localservices.pid_alive(pid) and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.1)
            if localservices.pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
            _reap(pid)
            stopped.append(f"{service} (pid {pid}, {url})")
        pid_file.unlink()
        url_file.unlink(missing_ok=True)
    if not quiet:
        print("stopped " + ", ".join(stopped) if stopped else f"no stack is running (nothing in {directory}/)")
    return stopped


def _reap(pid: int) -> None:
    # When `up` ran in this same process, the servers are our children: collect them.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


# ---- the demo, pushed into the stack ------------------------------------------------------------
def wait_for_push(prometheus_url: str, since: float, jobs: int, timeout: float = 60.0) -> None:
    """Wait until Prometheus has scraped a push made after ``since`` (wall clock) for each of
    ``jobs`` jobs, and the recording rules have been evaluated on it."""

    def scraped() -> float | None:
        groups = query(prometheus_url, 'evaljobs_last_success_timestamp_seconds{model_version=""}')
        fresh = [g for g in groups if float(g["value"][1]) >= since]
        return time.time() if len(fresh) >= jobs else None

    seen = wait_for(scraped, f"Prometheus to scrape the push of {jobs} job(s)", timeout)

    def evaluated_after(moment: float) -> float | None:
        groups = rule_groups(prometheus_url)
        evaluations = [_instant(g["lastEvaluation"]) for g in groups]
        return max(evaluations) if groups and min(evaluations) > moment else None

    # Twice: alerts read recorded series, and a group may run before the one that records them.
    recorded = wait_for(lambda: evaluated_after(seen), "every rule group to evaluate the new push", timeout)
    wait_for(lambda: evaluated_after(recorded), "every rule group to evaluate the recorded series", timeout)


def rule_groups(prometheus_url: str) -> list[dict[str, Any]]:
    """The rule groups Prometheus has loaded, with each rule's health and last error."""
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/rules", timeout=10) as response:
        return json.load(response)["data"]["groups"]


def _instant(rfc3339: str) -> float:
    # Prometheus writes nanoseconds ("2026-11-25T23:00:01.123456789Z"); datetime takes microseconds.
    from datetime import datetime

    whole, _, fraction = rfc3339.rstrip("Z").partition(".")
    moment = datetime.fromisoformat(whole + "+00:00").timestamp()
    return moment + (float("0." + fraction) if fraction else 0.0)


def feed_demo(urls: dict[str, str], directory: Path = STACK_DIR, config: str = "schedules.yaml") -> int:
    """Write the demo data, run every job ten days ago and now, wait for the rules; returns the exit code."""
    from evaljobs import cli
    from dev import demo
    from evaljobs.config import load_config

    database = f"sqlite:///{directory / 'evaljobs-demo.db'}"
    os.environ["EVALJOBS_DATABASE_URL"] = database
    os.environ["EVALJOBS_PUSHGATEWAY_URL"] = urls["pushgateway"]
    jobs = len(load_config(config).jobs)
    now = cli.now_utc()
    print(demo.build(database, now=now))
    earlier = now - timedelta(days=10)
    print(f"\nran every job of {config} at {earlier:%Y-%m-%d %H:%M} UTC (so the counters have an earlier value), "
          "and now:")
    since = time.time()
    code = _quiet_run(cli, config, earlier.isoformat())
    if code not in (0, 3):
        return code
    wait_for_push(urls["prometheus"], since, jobs)
    since = time.time()
    code = cli.main(["run", "--all", "--config", config])
    if code in (0, 3):
        wait_for_push(urls["prometheus"], since, jobs)
    return code


def _quiet_run(cli: Any, config: str, at: str) -> int:
    # The first run only gives the counters an earlier value; its table would be noise.
    stdout = sys.stdout
    try:
        with open(os.devnull, "w") as devnull:
            sys.stdout = devnull
            return cli.main(["run", "--all", "--config", config, "--at", at])
    finally:
        sys.stdout = stdout


#: (what it is, the series to name, the PromQL that shows it) for the summary `up` prints.
SHOWN = (
    ("throughput of the window, predictions/s", "model_version:model_predictions:rate_window", None),
    ("throughput, predictions/s of wall-clock time (here ten days of predictions were pushed seconds\n"
     "  apart, so it is inflated; right for real schedules)", "model_version:model_predictions:rate1d", None),
    ("average latency, s", "model_version:model_inference_latency_seconds:mean", None),
    ("p95 latency, s", "model_version:model_inference_latency_seconds:p95", None),
    ("accuracy per version, latest run", "model_accuracy_ratio",
     "model_accuracy_ratio and on (job, model, model_version) model_version:evaljobs_window_end_timestamp_seconds:current"),
    ("accuracy across versions (summed confusion counts)", "model:model_accuracy:ratio", None),
    ("label coverage across versions", "model:model_label_coverage:ratio", None),
    ("alerts (firing or pending)", "ALERTS", None),
)


def describe(prometheus_url: str) -> str:
    """The results of the SHOWN queries, as text."""
    lines = []
    for title, name, expr in SHOWN:
        lines.append(f"{title}:  {name}")
        results = sorted(query(prometheus_url, expr or name), key=lambda r: sorted(r["metric"].items()))
        for result in results:
            labels = result["metric"]
            who = " ".join(labels[k] for k in ("job", "model_version", "alertname", "alertstate") if labels.get(k))
            lines.append(f"    {who:<40} {float(result['value'][1]):.6g}")
        if not results:
            lines.append("    (none)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    action = args[0] if args else "up"
    directory = Path(os.environ.get("EVALJOBS_STACK_DIR", STACK_DIR))
    try:
        if action == "down":
            down(directory)
            return 0
        if action != "up":
            print(f"usage: python -m evaljobs.stack [up|down] (not {action!r})", file=sys.stderr)
            return 2
        urls = up(directory)
        code = feed_demo(urls, directory)
        print("\n" + describe(urls["prometheus"]))
    except StackError as exc:
        print(f"evaljobs stack: error: {exc}", file=sys.stderr)
        return 1
    prometheus = urls["prometheus"]
    print(f"""
Pushgateway  {urls['pushgateway']}          (metrics: {urls['pushgateway']}/metrics)
Prometheus   {prometheus}          (rules: {prometheus}/rules, alerts: {prometheus}/alerts)
Try          {prometheus}/graph?g0.expr=model%3Amodel_accuracy%3Aratio
Grafana      import grafana/dashboards/evaljobs.json, data source: {prometheus}
Alerts with `for:` show as pending for their first minutes. make stack-down stops both.""")
    return code


if __name__ == "__main__":
    sys.exit(main())
