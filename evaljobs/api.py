"""The Python API: evaluate a job from a notebook or a CI script, and get tidy rows back.

    import evaljobs

    config = evaljobs.load_config("schedules.yaml")
    result = evaljobs.evaluate(config, "fraud-daily", at="2026-11-30T00:00:00Z")
    result.to_dict()              # JSON-ready, as `evaljobs run --output json` prints it
    evaljobs.to_frame(result)     # pandas: one row per version, metric and class (pip install 'evaljobs[pandas]')

:func:`evaluate` is a dry run: it reads the database and returns the records, and writes
nothing anywhere (no results store, no Pushgateway). :func:`evaljobs.ops.runs.run_once` is
what ``evaljobs run`` does (claims, store, push).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from evaljobs.config import Config, Job, load_config
from evaljobs.errors import ConfigError
from evaljobs.ops.runner import Runner
from evaljobs.records import JobResult
from evaljobs.windows import parse_timestamp

if TYPE_CHECKING:
    import pandas

#: The columns of :func:`to_frame`, in order.
FRAME_COLUMNS = ("job", "model", "model_version", "window_start", "window_end", "metric", "average",
                 "class", "feature", "method", "value")


def evaluate(config: Config | str | os.PathLike[str], job: str | Job, at: datetime | str | None = None,
             labels_as_of: datetime | str | None = None) -> JobResult:
    """Evaluate one window of ``job`` (a name or a :class:`~evaljobs.config.Job`) at ``at``.

    ``config`` is a loaded :class:`~evaljobs.config.Config` or the path of a schedule file.
    ``at`` defaults to the job's latest schedule fire time, as ``evaljobs run`` does; times
    may be aware datetimes or ISO 8601 text. Nothing is stored or pushed.
    """
    from evaljobs.ops.runs import job_at
    from evaljobs.windows import as_utc

    if not isinstance(config, Config):
        config = load_config(config)
    if not isinstance(job, Job):
        job = config.job(job)
    moment = job_at(job, _instant(at, "at"), as_utc(datetime.now().astimezone()).replace(microsecond=0))
    with Runner(config) as runner:
        return runner.evaluate(job, moment, _instant(labels_as_of, "labels_as_of"))


def _instant(value: datetime | str | None, name: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ConfigError(f"{name}={value.isoformat()} has no time zone", "pass an aware datetime (e.g. UTC)")
        return value
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def tidy_rows(results: JobResult | Iterable[JobResult]) -> Iterator[dict[str, Any]]:
    """One dict per (version, metric, average or class, feature, method): the rows of :func:`to_frame`.

    Built from the records' ``to_dict()``, so every number the JSON output has is here too:
    window counts and ratios, per-class and averaged precision/recall/F1, score metrics, and
    every drift statistic (``metric`` ``drift_score`` / ``drift_p_value``, with ``feature`` and ``method``).
    """
    for result in [results] if isinstance(results, JobResult) else results:
        for version in result.versions:
            data = version.to_dict()
            base = {column: None for column in FRAME_COLUMNS}
            base.update({key: data[key] for key in ("job", "model", "model_version", "window_start", "window_end")})
            for key, value in data.items():
                if _number(value):
                    yield {**base, "metric": key, "value": float(value)}
                elif key in ("macro", "micro", "weighted") and isinstance(value, dict):
                    for metric, number in value.items():
                        if _number(number):
                            yield {**base, "metric": metric, "average": key, "value": float(number)}
                elif key == "regression" and isinstance(value, dict):  # mae, rmse, r2 ... of a regression job
                    for metric, number in value.items():
                        if _number(number) and metric != "labeled":
                            yield {**base, "metric": metric, "value": float(number)}
                elif key == "per_class" and isinstance(value, dict):
                    for cls, numbers in value.items():
                        for metric, number in numbers.items():
                            if _number(number):
                                yield {**base, "metric": metric, "class": cls, "value": float(number)}
            for feature in (data.get("drift") or {}).get("features", []):
                for method, statistic in feature["statistics"].items():
                    row = {**base, "feature": feature["feature"], "method": method}
                    yield {**row, "metric": "drift_score", "value": float(statistic["score"])}
                    if statistic["p_value"] is not None:
                        yield {**row, "metric": "drift_p_value", "value": float(statistic["p_value"])}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def to_frame(results: JobResult | Iterable[JobResult]) -> "pandas.DataFrame":
    """The results as a tidy pandas DataFrame (columns :data:`FRAME_COLUMNS`); needs pandas."""
    try:
        import pandas
    except ImportError:
        raise ConfigError("to_frame needs pandas, which is not installed",
                          "pip install 'evaljobs[pandas]'") from None
    return pandas.DataFrame(list(tidy_rows(results)), columns=list(FRAME_COLUMNS))


__all__ = ["FRAME_COLUMNS", "evaluate", "load_config", "tidy_rows", "to_frame"]
