"""Run jobs of a config: plan the window, evaluate it, hand the records to the sinks.

A :class:`Runner` keeps one engine per database URL and one checked source per job, so a
long-lived scheduler does not reconnect or re-inspect tables for every window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine

from .config import Config, Job
from .evaluate import evaluate_job
from .records import JobResult
from .sources import JobSource, connect
from .windows import Window, plan_window


@dataclass
class Runner:
    """Evaluates the jobs of one config against its database."""

    config: Config
    _engine: Engine | None = field(default=None, repr=False)
    _sources: dict[str, JobSource] = field(default_factory=dict, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = connect(self.config.database)
        return self._engine

    def source(self, job: Job) -> JobSource:
        """The job's source, its tables and columns checked on first use."""
        if job.name not in self._sources:
            source = JobSource(self.engine, job)
            source.check_schema()
            self._sources[job.name] = source
        return self._sources[job.name]

    def window(self, job: Job, at: datetime, labels_as_of: datetime | None = None) -> Window:
        """The window an evaluation of ``job`` at ``at`` covers."""
        return plan_window(at, job.window, job.label_delay, labels_as_of)

    def evaluate(self, job: Job, at: datetime, labels_as_of: datetime | None = None) -> JobResult:
        """Evaluate ``job`` at ``at`` (labels as of ``labels_as_of``, default ``at``)."""
        return evaluate_job(self.source(job), self.window(job, at, labels_as_of))

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self._sources.clear()

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
