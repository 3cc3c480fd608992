"""Write results as a node_exporter textfile-collector file (``*.prom``).

For machines without a Pushgateway: node_exporter's ``--collector.textfile.directory``
picks the file up. The grouping labels (``job``, ``model``, ``model_version``) become
labels of every sample. The file is written to a temporary name and renamed, so the
collector never reads half a file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.exposition import generate_latest

from evaljobs import exposition
from evaljobs.records import JobResult
from evaljobs.sinks.files import write_atomically


def render(jobs: Iterable[JobResult], success_timestamp: float | None = None) -> bytes:
    """The Prometheus text format of every group of every job, families merged."""
    stamp = time.time() if success_timestamp is None else success_timestamp
    families = []
    for job in jobs:
        for grouping_key, group in exposition.groups(job, stamp):
            families.extend(exposition.relabelled(group, {"job": job.job, **grouping_key}))
    return generate_latest(exposition.registry_of(exposition.merged(families)))


def write(path: str | os.PathLike[str], jobs: Iterable[JobResult], success_timestamp: float | None = None) -> Path:
    """Atomically write ``render(jobs)`` to ``path``."""
    return write_atomically(path, render(jobs, success_timestamp), "metrics file", "--textfile")
