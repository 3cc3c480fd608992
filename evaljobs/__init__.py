"""evaljobs: evaluate deployed models in the database, publish the results to Prometheus.

The Python API (see README, "Python API"): :func:`load_config`, :func:`evaluate` (one window of
one job, nothing stored or pushed), :func:`run_once` (what ``evaljobs run`` does), and
:func:`to_frame` / :func:`tidy_rows` for tidy rows; every record has ``to_dict()``.
"""

__version__ = "0.1.0"

from evaljobs.api import evaluate, tidy_rows, to_frame
from evaljobs.config import Config, Job, load_config
from evaljobs.errors import ConfigError, EvaljobsError, SinkError, SourceError
from evaljobs.ops.runs import RunReport, run_once
from evaljobs.records import JobResult, VersionResult

__all__ = [
    "Config",
    "ConfigError",
    "EvaljobsError",
    "Job",
    "JobResult",
    "RunReport",
    "SinkError",
    "SourceError",
    "VersionResult",
    "__version__",
    "evaluate",
    "load_config",
    "run_once",
    "tidy_rows",
    "to_frame",
]
