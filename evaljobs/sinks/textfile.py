"""Write results as a node_exporter textfile-collector file (``*.prom``).

For machines without a Pushgateway: node_exporter's ``--collector.textfile.directory``
picks the file up. The grouping labels (``job``, ``model``, ``model_version``) become
labels of every sample. The file is written to a temporary name and renamed, so the
collector never reads half a file.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.exposition import generate_latest

from .. import exposition
from ..errors import SinkError
from ..records import JobResult


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
    target = Path(path)
    data = render(jobs, success_timestamp)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except OSError as exc:
        raise SinkError(f"cannot write metrics file {str(target)!r}: {exc.strerror}",
                        "choose a writable path with --textfile") from None
    return target
