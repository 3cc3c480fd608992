"""The schedule file (``schedules.yaml``): loading, ``${ENV}`` interpolation and validation.

Validation errors become one :class:`~evaljobs.errors.ConfigError` line that names the
field and the problem, e.g. ``schedules.yaml: jobs[0] (fraud-daily).window: invalid
duration '1x' (use e.g. 30m, 1h, 7d, 1h30m)``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from evaljobs.drift import catalogue
from evaljobs.durations import parse_duration
from evaljobs.errors import ConfigError, redact

DEFAULT_DATABASE_URL = "sqlite:///evaljobs.db"
#: prometheus_client's default histogram buckets: 5 ms to 10 s, with 1 s (the alert threshold) a bound.
DEFAULT_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
MAX_LATENCY_BUCKETS = 50
#: Segment columns per job (each value of each is a series per metric and version).
MAX_SEGMENTS = 10
#: Signed-error buckets (prediction - label) of regression jobs, in the label's unit: symmetric,
#: finer near 0. Set error_buckets in the job for labels of another scale.
DEFAULT_ERROR_BUCKETS = (-100.0, -50.0, -20.0, -10.0, -5.0, -2.0, -1.0, 0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
#: The longest duration in a config (window, label delay, expiry...): a century.
MAX_SPAN = timedelta(days=100 * 365)

def _bounded_span(value: timedelta) -> timedelta:
    # Windows, delays and expiries are added to and subtracted from real times: a span of
    # millennia would overflow the datetimes (year 1 to 9999), and nothing real is that long.
    if value > MAX_SPAN:
        from evaljobs.durations import format_duration

        raise ValueError(f"duration {format_duration(value)} is longer than {MAX_SPAN.days // 365} years")
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_bounded_span)]

_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")
_ENV_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


class _Strict(BaseModel):
    # Unknown keys are almost always typos; refusing them beats ignoring a setting.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tables(_Strict):
    """Where predictions and labels live; either may be a view or ``schema.table``."""

    predictions: str = "predictions"
    labels: str = "labels"


class Columns(_Strict):
    """Column names in the user's tables. Defaults are the reference schema in ``sql/schema.sql``.

    ``score`` and ``latency_seconds`` are optional: left at their defaults they are used when
    the column exists; set to ``null`` they are never used; set to a name they must exist.
    """

    prediction_id: str = "prediction_id"
    model_name: str = "model_name"
    model_version: str = "model_version"
    predicted_at: str = "predicted_at"
    predicted_label: str = "predicted_label"
    score: str | None = "score"
    latency_seconds: str | None = "latency_seconds"
    #: Regression jobs: the numeric prediction; None means the predicted_label column as a number.
    predicted_value: str | None = None
    label_prediction_id: str = "prediction_id"
    label: str = "label"
    labeled_at: str = "labeled_at"
    #: Multiclass jobs: each class's probability column (class label -> column), e.g.
    #: ``{billing: p_billing, shipping: p_shipping}``; the multiclass estimate needs it.
    class_scores: dict[str, str] | None = None

    @field_validator("class_scores", mode="before")
    @classmethod
    def _class_scores_mapping(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ValueError("class_scores maps each class to its probability column, e.g. "
                             "{billing: p_billing, shipping: p_shipping}")
        out: dict[str, str] = {}
        for label, column in value.items():
            # Class labels are compared as text everywhere (see Job.positive_label), so 1 and "1" agree.
            key = str(label) if isinstance(label, (str, int, float)) and not isinstance(label, bool) else None
            if key is None or not isinstance(column, str) or not column.strip():
                raise ValueError(f"class_scores: class {label!r} needs a column name, not {column!r}")
            out[key] = column
        if len(out) < 2:
            raise ValueError("class_scores needs a probability column for every class (at least two)")
        if len(set(out.values())) < len(out):
            raise ValueError("class_scores: two classes map to the same column")
        return out

    def is_explicit(self, field: str) -> bool:
        """True when the user named this column rather than taking the default."""
        return field in self.model_fields_set


# ---- drift (issue 3) ---------------------------------------------------------------------------
#: Drift methods by the name used in the config and in the ``method`` label.
DriftMethod = Literal[tuple(catalogue.METHODS)]  # type: ignore[valid-type]
DriftKind = Literal[catalogue.KINDS]  # type: ignore[valid-type]
DRIFT_METHODS_BY_KIND = catalogue.METHODS_BY_KIND
DRIFT_TESTS = catalogue.TESTS
#: The names the model's own outputs get in the ``feature`` label.
DRIFT_OUTPUTS = ("predicted_label", "score", "label")


def _timestamp_value(value: Any) -> Any:
    # YAML turns an unquoted 2026-11-01T00:00:00Z into a datetime already; text is parsed here.
    from evaljobs.windows import as_utc, parse_timestamp

    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, date):
        return as_utc(datetime(value.year, value.month, value.day))
    if isinstance(value, str):
        return parse_timestamp(value)
    raise ValueError(f"expected a timestamp such as 2026-11-01T00:00:00Z, not {value!r}")


Timestamp = Annotated[datetime, BeforeValidator(_timestamp_value)]


class DriftFeature(_Strict):
    """One column whose drift is measured; ``kind`` is inferred from the column type when omitted."""

    name: str
    kind: DriftKind | None = None
    method: DriftMethod | Literal["auto"] = "auto"
    threshold: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _method_fits(self) -> "DriftFeature":
        if self.kind is not None and self.method != "auto" and self.method not in DRIFT_METHODS_BY_KIND[self.kind]:
            allowed = ", ".join(DRIFT_METHODS_BY_KIND[self.kind])
            raise ValueError(f"method {self.method!r} does not apply to a {self.kind} feature (use one of: auto, {allowed})")
        if self.threshold is not None and self.method == "auto":
            raise ValueError(f"threshold {self.threshold:g} needs a method (a p-value and a distance differ); "
                             "set method, or use drift.thresholds to change a method's default")
        if self.threshold is not None and self.method in DRIFT_TESTS and self.threshold >= 1:
            raise ValueError(f"threshold {self.threshold:g} of method {self.method!r} is a p-value and must be below 1 (e.g. 0.05)")
        return self


def _feature_shorthand(value: Any) -> Any:
    # "- amount" is short for "- name: amount".
    return {"name": value} if isinstance(value, str) else value


class DriftReference(_Strict):
    """What the window is compared with.

    - ``baseline``: the model's predictions in a fixed time range ``[start, end)``;
    - ``previous_window``: the model's predictions in the window just before the evaluated one;
    - ``version``: another version (``version``, the champion) over the same window;
    - ``table``: every row of a table or view (e.g. the training set) with the same column names.

    ``baseline`` and ``previous_window`` take an optional ``version`` to compare with one
    version's predictions only.
    """

    kind: Literal["baseline", "previous_window", "version", "table"]
    start: Timestamp | None = None
    end: Timestamp | None = None
    version: str | None = None
    table: str | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # Versions are compared as text (sql/window_rows.sql), so 2 and "2" agree.
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _fields_of_kind(self) -> "DriftReference":
        needed = {"baseline": ("start", "end"), "version": ("version",), "table": ("table",)}.get(self.kind, ())
        allowed = {"baseline": {"start", "end", "version"}, "previous_window": {"version"},
                   "version": {"version"}, "table": {"table"}}[self.kind]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            example = {"start": "start: 2026-11-01T00:00:00Z", "end": "end: 2026-11-08T00:00:00Z",
                       "version": "version: v2", "table": "table: training_set"}
            raise ValueError(f"a {self.kind} reference needs {' and '.join(missing)} "
                             f"(e.g. {', '.join(example[m] for m in missing)})")
        extra = sorted(name for name in ("start", "end", "version", "table")
                       if getattr(self, name) is not None and name not in allowed)
        if extra:
            raise ValueError(f"{', '.join(extra)} {'does' if len(extra) == 1 else 'do'} not apply to a {self.kind} reference")
        if self.kind == "baseline" and self.start >= self.end:  # type: ignore[operator]
            from evaljobs.windows import iso

            raise ValueError(f"baseline start {iso(self.start)} must be before its end {iso(self.end)}")
        return self


class Drift(_Strict):
    """A job's drift settings: what to compare (features and model outputs) and with what."""

    reference: DriftReference
    features: list[Annotated[DriftFeature, BeforeValidator(_feature_shorthand)]] = Field(default_factory=list)
    predicted_label: bool = True
    score: bool = True
    label: bool = True
    bins: int = Field(10, ge=2, le=100)
    max_categories: int = Field(1000, ge=2, le=100_000)
    #: Numeric drift is exact (a sort of every distinct value) up to this many compared values
    #: (reference plus window); above, it comes from fine histograms in one pass, with stated
    #: error bounds, unless the bound of the KS statistic or of the normalised Wasserstein
    #: distance exceeds binned_max_error (then exact again).
    exact_max_values: int = Field(200_000, ge=0)
    binned_max_error: float = Field(0.01, gt=0, le=1)
    thresholds: dict[DriftMethod, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_unique(self) -> "Drift":
        seen: set[str] = set()
        for feature in self.features:
            if feature.name in seen:
                raise ValueError(f"feature {feature.name!r} is listed twice")
            if feature.name in DRIFT_OUTPUTS and getattr(self, feature.name):
                raise ValueError(f"feature {feature.name!r} has the name of the model-output drift "
                                 f"'{feature.name}'; remove it from features or set drift.{feature.name}: false")
            seen.add(feature.name)
        for method, value in self.thresholds.items():
            if method in DRIFT_TESTS and value >= 1:
                raise ValueError(f"thresholds.{method} is a p-value and must be below 1 (e.g. 0.05), not {value:g}")
        return self


# ---- estimated performance before labels arrive (issue 13) ----------------------------------
class Estimate(_Strict):
    """A binary job's ``estimate:`` section: confidence-based performance estimation (CBPE).

    The recent window ``[T - window, T)`` has no labels yet; its expected confusion matrix follows
    from calibrated scores. ``reference`` gives the labelled predictions the calibration map is
    learned from (the drift reference kinds; ``previous_window`` is the job's latest labelled
    window, the one it evaluates). ``calibrated: true`` declares the scores calibrated already.
    """

    reference: DriftReference | None = None
    calibrated: bool = False
    calibration: Literal["isotonic", "histogram"] = "isotonic"
    bins: int = Field(20, ge=2, le=1000)
    window: Duration | None = None
    confidence: float = Field(0.95, gt=0, lt=1)

    @field_validator("window")
    @classmethod
    def _window_positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("window must be longer than 0 (e.g. 1d), or left out to use the job's window")
        return value

    @model_validator(mode="after")
    def _reference_or_calibrated(self) -> "Estimate":
        if self.reference is None and not self.calibrated:
            raise ValueError("needs a reference to learn the calibration from (e.g. reference: {kind: previous_window}), "
                             "or calibrated: true if the scores are calibrated probabilities already")
        return self


# ---- incremental windows (issue 9) ------------------------------------------------------------
class Incremental(_Strict):
    """A job's ``incremental:`` section: how a run with a results store reuses earlier work.

    The window is cut into parts of ``part`` (default: the schedule's interval), aligned to the
    window's end; each part's aggregates are stored in the results store and reused while its
    predictions and labels are unchanged (README, "Incremental windows"). ``incremental: false``
    recomputes the whole window at every run.
    """

    enabled: bool = True
    part: Duration | None = None

    @field_validator("part")
    @classmethod
    def _part_whole_seconds(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and (value <= timedelta(0) or value.microseconds or value < timedelta(minutes=1)):
            raise ValueError("part must be whole seconds and at least 1m (e.g. 1h), or left out to use the "
                             "schedule's interval")
        return value


# ---- operations: results store, scheduler, CI gate (issue 4) ----------------------------------
class CatchUp(_Strict):
    """How many missed windows a scheduler evaluates after downtime: a count, an age, or both.

    Written as ``catch_up: 3`` (the 3 newest missed windows), ``catch_up: 2d`` (every missed
    window whose evaluation time is less than 2 days old) or ``{windows: 10, within: 2d}``
    (both limits). ``0`` turns catch-up off. Older gaps are for ``evaljobs backfill``.
    """

    windows: int | None = Field(None, ge=0)
    within: Duration | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"catch_up must be a number of windows or a duration, not {value!r}")
        if isinstance(value, int):
            return {"windows": value}
        if isinstance(value, (str, timedelta)):
            return {"within": value}
        return value

    @model_validator(mode="after")
    def _bounded(self) -> "CatchUp":
        if self.windows is None and self.within is None:
            raise ValueError("catch_up needs a limit: windows (e.g. 3) and/or within (e.g. 2d)")
        return self


class RecallThreshold(_Strict):
    """``min_recall``: a number is the macro average; ``per_class`` sets classes one by one."""

    macro: float | None = Field(None, ge=0, le=1)
    per_class: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return {"macro": value}
        if isinstance(value, dict) and isinstance(value.get("per_class"), dict):
            # Class labels are text everywhere (see Job.positive_label).
            value = {**value, "per_class": {str(k): v for k, v in value["per_class"].items()}}
        return value


class RegressionMargin(_Strict):
    """``max_regression``: how much worse than the baseline the candidate may be (absolute).

    A number applies to accuracy; ``recall`` applies to the recall of every class.
    """

    accuracy: float | None = Field(None, ge=0, le=1)
    recall: float | None = Field(None, ge=0, le=1)
    #: Regression jobs: how much higher the candidate's MAE may be (in the label's unit).
    mae: float | None = Field(None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return {"accuracy": value}
        return value


class Gate(_Strict):
    """Thresholds ``evaljobs gate`` checks (see README, "CI gate")."""

    min_accuracy: float | None = Field(None, ge=0, le=1)
    min_recall: RecallThreshold | None = None
    min_labeled_predictions: int | None = Field(None, ge=0)
    max_drift_psi: float | None = Field(None, ge=0)
    max_regression: RegressionMargin | None = None
    confidence: float = Field(0.95, gt=0, lt=1)
    # regression jobs (evaljobs/quality/regression.py)
    max_mae: float | None = Field(None, ge=0)
    max_rmse: float | None = Field(None, ge=0)
    min_r2: float | None = Field(None, le=1)


class ResultsSettings(_Strict):
    """The results store: table ``evaljobs_results`` in ``database`` (default: the config's)."""

    database: str | None = None
    claim_expiry: Duration = timedelta(hours=1)

    @field_validator("database", mode="before")
    @classmethod
    def _blank_is_default(cls, value: Any) -> Any:
        # ${EVALJOBS_RESULTS_URL:-} left empty means "the jobs' database".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("claim_expiry")
    @classmethod
    def _expiry_positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("claim_expiry must be longer than 0 (longer than your slowest run, e.g. 1h)")
        return value


class SchedulerSettings(_Strict):
    """Settings of ``evaljobs schedule``."""

    catch_up: CatchUp = Field(default_factory=lambda: CatchUp(windows=3))
    misfire_grace_time: Duration = timedelta(minutes=5)
    stop_timeout: Duration = timedelta(seconds=25)
    max_parallel_jobs: int = Field(2, ge=1)


class Job(_Strict):
    """One scheduled evaluation: a model, a task, a window and where the data is."""

    name: str
    model: str
    task: str
    positive_label: str | None = None
    window: Duration
    label_delay: Duration = timedelta(0)
    schedule: str
    tables: Tables = Field(default_factory=Tables)
    columns: Columns = Field(default_factory=Columns)
    drift: Drift | None = None
    estimate: Estimate | None = None
    catch_up: CatchUp | None = None
    gate: Gate | None = None
    incremental: Incremental = Field(default_factory=Incremental)

    @field_validator("incremental", mode="before")
    @classmethod
    def _incremental_switch(cls, value: Any) -> Any:
        # `incremental: false` (or true) is the short form of {enabled: ...}.
        return {"enabled": value} if isinstance(value, bool) else value

    @field_validator("name")
    @classmethod
    def _name_is_a_label_value(cls, value: str) -> str:
        if not _JOB_NAME.match(value):
            raise ValueError(f"invalid job name {value!r} (letters, digits, '_', '.', ':' and '-' only)")
        return value

    @field_validator("positive_label", mode="before")
    @classmethod
    def _label_as_text(cls, value: Any) -> Any:
        # Class labels are compared as text everywhere (see sql/window_rows.sql), so 1 and "1" agree.
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"positive_label must be a number or text, not {value!r}")
        return str(value)

    @field_validator("window")
    @classmethod
    def _window_positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("window must be longer than 0 (e.g. 1h, 1d)")
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from evaljobs.windows import cron_trigger

        if len(value.split()) != 5:
            raise ValueError(f"schedule {value!r} is not a 5-field cron expression (e.g. '15 * * * *')")
        try:
            cron_trigger(value)  # crontab(5) semantics, which APScheduler's from_crontab lacks
        except ValueError as exc:
            raise ValueError(f"schedule {value!r} is not valid cron: {exc}") from None
        return value

    @field_validator("task")
    @classmethod
    def _task_known(cls, value: str) -> str:
        from evaljobs.quality.tasks import TASKS  # the table imports the source, which imports this module

        if value not in TASKS:
            raise ValueError(f"{value!r} is not allowed: input should be {' or '.join(repr(t) for t in TASKS)}")
        return value

    @model_validator(mode="after")
    def _binary_needs_positive_label(self) -> "Job":
        if self.task == "binary" and self.positive_label is None:
            raise ValueError("a binary job needs positive_label (the class whose score is stored, e.g. 1)")
        if self.columns.class_scores is not None and self.task != "multiclass":
            raise ValueError(f"columns.class_scores applies to multiclass jobs, not {self.task!r} ones "
                             "(a binary job's probability is columns.score)")
        if self.estimate is not None and self.task == "multiclass":
            if self.columns.class_scores is None:
                raise ValueError("a multiclass estimate needs one probability column per class: set columns.class_scores "
                                 "(e.g. {billing: p_billing, shipping: p_shipping, ...}), or remove estimate from this job")
            return self
        if self.estimate is not None and self.task != "binary":
            raise ValueError(f"estimate is for binary jobs (it needs the positive class's probability); "
                             f"remove it from this {self.task} job")
        if self.estimate is not None and self.columns.score is None:
            raise ValueError("estimate needs the score column (the positive class's probability); set columns.score")
        return self

    # ---- regression (evaljobs/quality/regression.py) ----
    #: Upper bounds of the ``model_prediction_error`` buckets (prediction - label, in the label's unit).
    error_buckets: tuple[float, ...] = DEFAULT_ERROR_BUCKETS

    @field_validator("error_buckets", mode="before")
    @classmethod
    def _error_buckets_list(cls, value: Any) -> Any:
        if isinstance(value, (int, float, str)):
            raise ValueError(f"error_buckets must be a list of signed errors, e.g. [-10, -1, 0, 1, 10], not {value!r}")
        return value

    @field_validator("error_buckets")
    @classmethod
    def _error_buckets_increasing(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return bucket_bounds("error_buckets", value, "", "[-10, -1, 0, 1, 10]",
                             lambda bound: math.isfinite(bound), "is not a finite number")

    @model_validator(mode="after")
    def _regression_settings_fit_the_task(self) -> "Job":
        gate = self.gate
        if self.task != "regression":
            if self.columns.is_explicit("predicted_value"):
                raise ValueError(f"columns.predicted_value applies to regression jobs, not {self.task!r} ones")
            if gate is not None and (gate.max_mae is not None or gate.max_rmse is not None or gate.min_r2 is not None
                                     or (gate.max_regression is not None and gate.max_regression.mae is not None)):
                raise ValueError(f"gate: max_mae, max_rmse, min_r2 and max_regression.mae apply to regression jobs, "
                                 f"not {self.task!r} ones")
        elif gate is not None:
            classification = [name for name in ("min_accuracy", "min_recall") if getattr(gate, name) is not None]
            margins = gate.max_regression
            classification += [f"max_regression.{name}" for name in ("accuracy", "recall")
                               if margins is not None and getattr(margins, name) is not None]
            if classification:
                raise ValueError(f"gate: {', '.join(classification)} apply to classification jobs; a regression "
                                 "job takes max_mae, max_rmse, min_r2 and max_regression: {mae: ...}")
        if self.task == "regression" and self.positive_label is not None:
            raise ValueError("positive_label applies to binary jobs, not regression ones")
        return self

    #: Classes per version that keep their own per-class and confusion series (and stored
    #: entries), by volume in the window; the rest are summed into class "(other)". 50 keeps
    #: every class of most taxonomies exact while bounding a version's push to about
    #: (50 + 1)^2 + 3 x 51 = 2,754 class series (300 classes made 90,945).
    max_classes: int = Field(50, ge=2, le=1000)

    # ---- segments (evaljobs/quality/segments.py) ----
    #: Low-cardinality columns of the predictions table whose values get their own metrics.
    segments: list[str] = Field(default_factory=list, max_length=MAX_SEGMENTS)
    #: Values kept per segment (by volume in the window); the rest are summed into "(other)".
    max_segment_values: int = Field(20, ge=1, le=1000)

    @field_validator("segments", mode="before")
    @classmethod
    def _segments_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(f"segments must be a list of column names, e.g. [country, channel], not {value!r}")
        return value

    @field_validator("segments")
    @classmethod
    def _segments_unique(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for name in value:
            if not name.strip():
                raise ValueError("segments: a column name is empty")
            if name.lower() in seen:
                raise ValueError(f"segments: column {name!r} is listed twice")
            seen.add(name.lower())
        return value

    # ---- latency histogram (evaljobs/latency.py) ----
    #: Upper bounds (seconds) of the ``model_inference_latency_seconds`` buckets; +Inf is implied.
    latency_buckets: tuple[float, ...] = DEFAULT_LATENCY_BUCKETS

    @field_validator("latency_buckets", mode="before")
    @classmethod
    def _buckets_list(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) or isinstance(value, str):
            raise ValueError(f"latency_buckets must be a list of seconds, e.g. [0.05, 0.1, 0.5, 1], not {value!r}")
        return value

    @field_validator("latency_buckets")
    @classmethod
    def _buckets_increasing(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return bucket_bounds("latency_buckets", value, " in seconds", "[0.1, 0.5, 1]",
                             lambda bound: math.isfinite(bound) and bound > 0, "is not a positive number of seconds")


def bucket_bounds(setting: str, value: tuple[float, ...], unit: str, example: str,
                  valid: Callable[[float], bool], invalid: str) -> tuple[float, ...]:
    """A histogram's configured upper bounds: +Inf implied (and dropped if written), at least one
    and at most MAX_LATENCY_BUCKETS, each ``valid``, strictly increasing; else a ValueError."""
    if value and math.isinf(value[-1]) and value[-1] > 0:
        value = value[:-1]  # +Inf is always the last bucket; writing it out is harmless
    if not value:
        raise ValueError(f"{setting} needs at least one bound{unit}, e.g. {example}")
    if len(value) > MAX_LATENCY_BUCKETS:
        raise ValueError(f"{setting} has {len(value)} bounds; at most {MAX_LATENCY_BUCKETS} "
                         "(every bound is a series per model version)")
    for bound in value:
        if not valid(bound):
            raise ValueError(f"{setting}: {bound!r} {invalid}")
    if any(b <= a for a, b in zip(value, value[1:])):
        raise ValueError(f"{setting} must be strictly increasing, got {list(value)}")
    return value


class Pushgateway(_Strict):
    """Where results are pushed. Credentials may also sit in the URL (``http://user:pass@host``)."""

    url: str
    #: One deadline for each whole push (connect, send, full reply), not per socket read.
    timeout_seconds: float = Field(10.0, gt=0, le=3600)
    username: str | None = None
    password: str | None = None
    #: TLS like Prometheus's tls_config: a private CA, a client certificate, or (tests) no check.
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _tls_files_exist(self) -> "Pushgateway":
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"{name} {path!r} is not a file")
        if self.key_file and not self.cert_file:
            raise ValueError("key_file needs cert_file (the client certificate it belongs to)")
        return self

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"pushgateway url {value!r} must start with http:// or https:// and name a host")
        try:
            urlsplit(value).port
        except ValueError:
            raise ValueError(f"pushgateway url {redact(value)!r} has an invalid port (1-65535)") from None
        return value.rstrip("/")


class Timeouts(_Strict):
    """How long evaljobs waits for a database, so that a server that accepts connections and
    never answers, or a lock that is never released, fails a run instead of hanging it.
    Applied per engine (:mod:`evaljobs.db.dialects`); ``statement`` should stay below
    ``results.claim_expiry``, so that a hung run fails before its claim is taken over."""

    connect: Duration = timedelta(seconds=10)
    statement: Duration = timedelta(minutes=30)

    @field_validator("connect", "statement")
    @classmethod
    def _positive(cls, value: timedelta, info: Any) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError(f"timeouts.{info.field_name} must be at least 1s (e.g. 10s, 30m)")
        return value


class Config(_Strict):
    """The whole schedule file."""

    database: str = DEFAULT_DATABASE_URL
    pushgateway: Pushgateway | None = None
    jobs: list[Job]
    timeouts: Timeouts = Field(default_factory=Timeouts)
    results: ResultsSettings = Field(default_factory=ResultsSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)

    @field_validator("pushgateway", mode="before")
    @classmethod
    def _url_shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"url": value} if value.strip() else None
        return value

    @field_validator("jobs")
    @classmethod
    def _unique_names(cls, jobs: list[Job]) -> list[Job]:
        seen: set[str] = set()
        for job in jobs:
            if job.name in seen:
                raise ValueError(f"job name {job.name!r} is used twice; names must be unique")
            seen.add(job.name)
        if not jobs:
            raise ValueError("no jobs: add at least one entry under jobs:")
        return jobs

    def waits(self) -> "Waits":
        """``timeouts:`` as the engines take them (:class:`evaljobs.db.dialects.Waits`)."""
        from evaljobs.db.dialects import Waits

        return Waits(connect=self.timeouts.connect.total_seconds(), statement=self.timeouts.statement.total_seconds())

    def job(self, name: str) -> Job:
        """The job called ``name``; a ConfigError lists the known names otherwise."""
        for job in self.jobs:
            if job.name == name:
                return job
        known = ", ".join(j.name for j in self.jobs)
        raise ConfigError(f"unknown job {name!r}", f"jobs in this config: {known}")


def interpolate_env(value: Any, environ: dict[str, str] | None = None, where: str = "") -> Any:
    """Replace ``${NAME}`` and ``${NAME:-default}`` in every string of a parsed YAML tree."""
    env = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {k: interpolate_env(v, env, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate_env(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in env and (env[name] != "" or default is None):
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{where or 'config'}: environment variable {name} is not set",
            f"export {name}=... or write ${{{name}:-default}}",
        )

    return _ENV_REF.sub(substitute, value)


def parse_config(text: str, source: str = "config", environ: dict[str, str] | None = None) -> Config:
    """Validate schedule-file text; raise ConfigError naming the field on any problem."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{source}: not valid YAML{where}: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with 'database', 'pushgateway' and 'jobs'")
    raw = interpolate_env(raw, environ)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc, raw)}") from None


def load_config(path: str | os.PathLike[str], environ: dict[str, str] | None = None) -> Config:
    """Read and validate a schedule file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(file)!r} not found", "pass --config PATH (see schedules.yaml in the repository)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(file)!r}: {exc.strerror}") from None
    return parse_config(text, source=file.name, environ=environ)


def _describe(exc: ValidationError, raw: dict[str, Any]) -> str:
    """One line for (at most three of) pydantic's errors, with job names for readability."""
    described = []
    for error in exc.errors()[:3]:
        location = _location(error["loc"], raw)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is required"
        elif error["type"] == "extra_forbidden":
            message = "is not a known setting (check the spelling)"
        elif error["type"] == "literal_error":
            message = f"{error['input']!r} is not allowed: {message.lower()}"
        described.append(f"{location}: {message}" if location else message)
    more = len(exc.errors()) - len(described)
    return "; ".join(described) + (f" (and {more} more)" if more > 0 else "")


def _location(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            name = node[item].get("name") if isinstance(node, list) and item < len(node) and isinstance(node[item], dict) else None
            parts.append(f"[{item}]" + (f" ({name})" if name else ""))
        else:
            parts.append(("." if parts else "") + str(item))
        try:
            node = node[item]
        except (KeyError, IndexError, TypeError):
            node = None
    return "".join(parts)
