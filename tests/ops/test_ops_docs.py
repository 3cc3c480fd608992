"""The operations examples in the README parse and match the code they describe."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from evaljobs import cli
from evaljobs.config import load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
OPERATIONS = README[README.index("## Operations: results store"):]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", OPERATIONS, flags=re.S)


def test_the_yaml_examples_parse_and_the_kubernetes_cronjob_matches_the_job() -> None:
    documents = [yaml.safe_load(text) for text in blocks("yaml")]
    [cronjob] = [d for d in documents if isinstance(d, dict) and d.get("kind") == "CronJob"]
    schedules = load_config(ROOT / "schedules.yaml", environ={})
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    job = schedules.job(container["args"][1])
    assert cronjob["spec"]["schedule"] == job.schedule and cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cli.build_parser().parse_args(container["args"]).command == "run"


def test_the_settings_examples_are_valid_config() -> None:
    job = "  - {name: intent-6h, model: intent, task: multiclass, window: 6h, schedule: '15 */6 * * *'}\n"
    for text in blocks("yaml"):
        document = yaml.safe_load(text)
        if isinstance(document, dict) and ("results" in document or "scheduler" in document):
            kept = {k: v for k, v in document.items() if k in ("results", "scheduler")}
            parse_config(yaml.safe_dump(kept) + "jobs:\n" + job, environ={})
    gate_example = next(t for t in blocks("yaml") if "gate:" in t and "min_accuracy" in t)
    gate = yaml.safe_load(gate_example)["jobs"][0]["gate"]
    config = parse_config(yaml.safe_dump({"jobs": [{"name": "fraud-daily", "model": "fraud", "task": "binary",
                                                    "positive_label": 1, "window": "1d", "schedule": "30 6 * * *",
                                                    "gate": gate}]}))
    assert config.jobs[0].gate.max_regression.recall == 0.05


def test_the_ci_workflow_runs_a_real_gate_command() -> None:
    [workflow] = [yaml.safe_load(t) for t in blocks("yaml") if "runs-on" in t]
    steps = workflow["jobs"]["gate"]["steps"]
    command = next(s["run"] for s in steps if "evaljobs gate" in s.get("run", ""))
    argv = shlex.split(command.replace('"$GITHUB_STEP_SUMMARY"', "summary.md"))
    args = cli.build_parser().parse_args(argv[1:])
    assert (args.command, args.candidate, args.baseline, args.junit) == ("gate", "v3-canary", "v2", "gate-junit.xml")


def test_the_systemd_unit_stops_later_than_the_scheduler_waits() -> None:
    [unit] = blocks("ini")
    assert "ExecStart=/opt/evaljobs/bin/evaljobs schedule" in unit
    stop = int(re.search(r"TimeoutStopSec=(\d+)", unit).group(1))
    default = parse_config("jobs:\n  - {name: a, model: m, task: multiclass, window: 1h, schedule: '0 * * * *'}\n")
    assert stop > default.scheduler.stop_timeout.total_seconds()
