"""`make stack` / `make stack-down`: real processes started, fed, queried and stopped again."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dev import localservices, stack

pytestmark = pytest.mark.service  # real processes: Pushgateway, Prometheus, PostgreSQL

REPOSITORY = Path(__file__).resolve().parents[2]


def run_stack(action: str, directory: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "EVALJOBS_STACK_DIR": str(directory)}
    for name in ("EVALJOBS_DATABASE_URL", "EVALJOBS_PUSHGATEWAY_URL", "EVALJOBS_CONFIG"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "dev.stack", action], cwd=REPOSITORY, env=env,
                          capture_output=True, text=True, timeout=180)


def test_stack_up_feeds_the_demo_and_down_stops_exactly_it(tmp_path: Path) -> None:
    directory = tmp_path / "stack"
    try:
        up = run_stack("up", directory)
        assert up.returncode == 0, up.stdout + up.stderr
        urls = {s: (directory / f"{s}.url").read_text() for s in stack.SERVICES}
        pids = {s: int((directory / f"{s}.pid").read_text()) for s in stack.SERVICES}
        assert f"Prometheus   {urls['prometheus']}" in up.stdout and f"Pushgateway  {urls['pushgateway']}" in up.stdout
        accuracy = re.search(r"model:model_accuracy:ratio\n\s+fraud-daily\s+([0-9.]+)", up.stdout)
        assert accuracy and 0.5 < float(accuracy.group(1)) < 1
        assert "fraud-daily v3-canary ModelAccuracyLow" in up.stdout
        assert stack.query(urls["prometheus"], "model_version:model_inference_latency_seconds:p95")
        config = (directory / "prometheus.yml").read_text()
        assert str(stack.RULES_FILE) in config and "honor_labels: true" in config

        assert stack.up(directory) == urls  # a second `make stack` reuses the running servers
        assert {s: int((directory / f"{s}.pid").read_text()) for s in stack.SERVICES} == pids

        down = run_stack("down", directory)
        assert down.returncode == 0 and "stopped pushgateway" in down.stdout and "prometheus" in down.stdout
        assert not any(localservices.pid_alive(pid) for pid in pids.values())
        assert not list(directory.glob("*.pid"))
        assert "no stack is running" in run_stack("down", directory).stdout
    finally:
        stack.down(directory, quiet=True)


def test_down_leaves_a_recycled_pid_alone(tmp_path: Path) -> None:
    """A pid file whose process is no longer our server (here: this test process) is not signalled."""
    (tmp_path / "prometheus.pid").write_text(str(os.getpid()))
    (tmp_path / "prometheus.url").write_text("http://127.0.0.1:1")
    assert stack.down(tmp_path, quiet=True) == []
    assert not (tmp_path / "prometheus.pid").exists()
