"""The installed wheel, not the checkout: a fresh venv runs the demo job and writes the shipped
Prometheus and Grafana files; the package never imports the developer tooling in dev/."""

from __future__ import annotations

import ast
import json
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

from evaljobs.assets import FILES

ROOT = Path(__file__).resolve().parents[1]


def test_no_module_of_the_package_imports_dev() -> None:
    for path in (ROOT / "evaljobs").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == "dev" or n.startswith("dev.") for n in names), path


def test_installed_wheel_runs_the_demo_job_and_writes_the_assets(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True)
    [wheel] = (tmp_path / "dist").glob("evaljobs-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"evaljobs/assets/{name}" for name in FILES} <= names
    assert not any(name.startswith("dev/") for name in names)

    # A fresh venv with the wheel installed; its dependencies are borrowed from this venv's
    # site-packages by a path entry (no download), which does not activate our editable install.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    [fresh_site] = venv.glob("lib/python*/site-packages")
    (fresh_site / "borrowed-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True)
    evaljobs = str(venv / "bin/evaljobs")
    work = tmp_path / "work"
    work.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([evaljobs, *args], cwd=work, capture_output=True, text=True, timeout=300)

    where = subprocess.run([str(venv / "bin/python"), "-c", "import evaljobs; print(evaljobs.__file__)"],
                           cwd=work, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv)), where

    database = f"sqlite:///{work / 'demo.db'}"
    built = run("demo-data", "--database", database, "--now", "2026-11-20T06:30:00Z", "--days", "6")
    assert built.returncode == 0, built.stderr
    config = yaml.safe_load((ROOT / "schedules.yaml").read_text())
    config["database"] = database
    (work / "schedules.yaml").write_text(yaml.safe_dump(config))
    ran = run("run", "fraud-daily", "--at", "2026-11-20T06:30:00Z", "--dry-run", "--output", "json")
    assert ran.returncode == 0, ran.stderr
    [job] = json.loads(ran.stdout)["jobs"]
    assert {v["model_version"] for v in job["versions"]} == {"v2", "v3-canary"}
    assert all(0 < v["accuracy"] <= 1 for v in job["versions"])

    written = run("assets", "--dir", str(work / "assets"))
    assert written.returncode == 0, written.stderr
    for name in FILES:
        assert (work / "assets" / name).read_bytes() == (ROOT / name).read_bytes()
