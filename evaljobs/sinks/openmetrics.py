"""Write results of past windows as an OpenMetrics file for ``promtool tsdb create-blocks-from openmetrics``.

The Pushgateway keeps only the latest value of a group and refuses timestamps, so history goes
into Prometheus another way: every sample carries its window's evaluation time (the schedule's
fire time, in seconds) as its timestamp, the grouping labels (``job``, ``model``,
``model_version``) become sample labels as Prometheus would have scraped them with
``honor_labels: true``, each family appears once (families are not interleaved), the samples
of a series are contiguous with increasing timestamps, and the file ends with ``# EOF``.
The families are :mod:`evaljobs.exposition`'s, so the names and values equal the live ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.core import Metric
from prometheus_client.openmetrics.exposition import generate_latest

from evaljobs import exposition
from evaljobs.records import JobResult
from evaljobs.sinks.files import write_atomically


def timestamped_families(results: Iterable[JobResult]) -> list[Metric]:
    """Every group of every result, relabelled and stamped with the result's evaluation time."""
    stamped: list[Metric] = []
    for result in sorted(results, key=lambda r: r.window.evaluated_at):
        stamp = result.window.evaluated_at.timestamp()
        for grouping_key, families in exposition.groups(result, stamp):
            stamped.extend(exposition.relabelled(families, {"job": result.job, **grouping_key}, timestamp=stamp))
    merged = exposition.merged(stamped)
    for family in merged:
        # One series' points together, oldest first; a histogram point's buckets, count and sum
        # share the labels but `le`, and keep their order (the sort is stable).
        family.samples.sort(key=lambda s: (sorted((k, v) for k, v in s.labels.items() if k != "le"), s.timestamp))
    return merged


def render(results: Iterable[JobResult]) -> bytes:
    """The OpenMetrics text of ``results`` (see the module docstring)."""
    return generate_latest(exposition.registry_of(timestamped_families(results)))


def write(path: str | os.PathLike[str], results: Iterable[JobResult]) -> Path:
    """Atomically write :func:`render` to ``path``."""
    return write_atomically(path, render(results), "OpenMetrics file", "--openmetrics")
