"""The Prometheus and Grafana files that ship with evaljobs, and ``evaljobs assets`` to write them out.

A source checkout has them at the repository root (``prometheus/``, ``grafana/``); an installed
wheel carries the same files as ``evaljobs/assets/``, so ``pip install evaljobs`` is enough to
get the recording and alerting rules, their promtool unit tests, the scrape configuration and
the dashboard with its provisioning files.
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

from evaljobs.errors import SinkError

#: The shipped files, relative to the assets directory.
FILES = (
    "prometheus/prometheus.yml",
    "prometheus/evaljobs.rules.yml",
    "prometheus/evaljobs.rules.test.yml",
    "grafana/dashboards/evaljobs.json",
    "grafana/provisioning/dashboards/evaljobs.yaml",
    "grafana/provisioning/datasources/prometheus.yaml",
)


def assets_directory() -> Path:
    """Where the shipped files are: inside the installed package, else the checkout's root."""
    packaged = resources.files("evaljobs") / "assets"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent


def write_assets(directory: str | os.PathLike[str]) -> list[Path]:
    """Copy every file of :data:`FILES` under ``directory`` (keeping the sub-folders); returns the paths.

    Existing files of the same name are replaced; nothing else in ``directory`` is touched.
    """
    source, target = assets_directory(), Path(directory)
    written = []
    for name in FILES:
        destination = target / name
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, destination)
        except OSError as exc:
            raise SinkError(f"cannot write {str(destination)!r}: {exc.strerror}",
                            "choose a writable directory with --dir") from None
        written.append(destination)
    return written
