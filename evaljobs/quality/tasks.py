"""The task table: how each kind of model (a job's ``task:``) is evaluated.

A task turns one window of a job into one record per model version (:class:`TaskResult`).
Adding a task is one entry in :data:`TASKS` plus its own module; latency and drift apply to
every task and are added by :func:`evaljobs.ops.runner.evaluate_job`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from evaljobs.db.source import JobSource
from evaljobs.quality.classification import evaluate_classification
from evaljobs.quality.regression import evaluate_regression
from evaljobs.records import TaskResult
from evaljobs.windows import Window


@dataclass(frozen=True)
class Task:
    """One kind of model: its name in the config and the function that evaluates a window."""

    name: str
    evaluate: Callable[[JobSource, Window], TaskResult]
    description: str


TASKS: dict[str, Task] = {task.name: task for task in (
    Task("binary", evaluate_classification,
         "two classes, one of them positive_label; a score column adds ROC AUC, log loss and Brier score"),
    Task("multiclass", evaluate_classification,
         "several classes; per-class, macro, micro and weighted precision, recall and F1"),
    Task("regression", evaluate_regression,
         "a number; MAE, MSE, RMSE, MAPE, R2, mean error and a signed-error histogram"),
)}
