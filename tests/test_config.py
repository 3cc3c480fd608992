"""Schedule-file parsing: interpolation, defaults and one-line errors that name the field."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from evaljobs.config import DEFAULT_DATABASE_URL, parse_config
from evaljobs.durations import format_duration, parse_duration
from evaljobs.errors import ConfigError, redact
from evaljobs.windows import parse_timestamp, plan_window

GOOD = """
database: ${DB_URL:-sqlite:///x.db}
pushgateway: ${GW}
jobs:
  - name: fraud-daily
    model: fraud
    task: binary
    positive_label: 1
    window: 1d
    label_delay: 2d
    schedule: "30 6 * * *"
"""


def test_good_config_with_interpolation() -> None:
    config = parse_config(GOOD, environ={"GW": "http://gw:9091/"})
    assert config.database == "sqlite:///x.db"
    assert config.pushgateway.url == "http://gw:9091"
    job = config.job("fraud-daily")
    assert (job.window, job.label_delay, job.positive_label) == (timedelta(days=1), timedelta(days=2), "1")
    assert job.tables.predictions == "predictions" and job.columns.score == "score"
    assert not job.columns.is_explicit("score")


def test_env_value_beats_default_and_missing_env_is_named() -> None:
    config = parse_config(GOOD, environ={"GW": "http://gw:9091", "DB_URL": "postgresql://u@h/db"})
    assert config.database == "postgresql://u@h/db"
    with pytest.raises(ConfigError, match=r"pushgateway: environment variable GW is not set; export GW=\.\.\."):
        parse_config(GOOD, environ={})


def test_database_defaults_to_sqlite() -> None:
    config = parse_config("jobs: [{name: a, model: m, task: multiclass, window: 1h, schedule: '* * * * *'}]")
    assert config.database == DEFAULT_DATABASE_URL and config.pushgateway is None


@pytest.mark.parametrize("change, message", [
    (("window: 1d", "window: 1x"), "jobs[0] (fraud-daily).window: invalid duration '1x'"),
    (("task: binary", "task: ranking"), "jobs[0] (fraud-daily).task: 'ranking' is not allowed"),
    (("    positive_label: 1\n", ""), "a binary job needs positive_label"),
    (('schedule: "30 6 * * *"', 'schedule: "every day"'), "not a 5-field cron expression"),
    (('schedule: "30 6 * * *"', 'schedule: "61 * * * *"'), "is not valid cron"),
    (("model: fraud", "modle: fraud"), "jobs[0] (fraud-daily).modle: is not a known setting"),
    (("    model: fraud\n", ""), "jobs[0] (fraud-daily).model: is required"),
    (("name: fraud-daily", "name: 'fraud daily'"), "invalid job name"),
    (("pushgateway: ${GW}", "pushgateway: gw:9091"), "must start with http:// or https://"),
    (("window: 1d", "window: 0s"), "window must be longer than 0"),
])
def test_errors_name_the_field(change, message) -> None:
    text = GOOD.replace(*change)
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="schedules.yaml", environ={"GW": "http://gw:9091"})
    assert message in str(info.value)
    assert str(info.value).startswith("schedules.yaml: ")
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_duplicate_job_names_and_unknown_job() -> None:
    twice = GOOD + GOOD[GOOD.index("  - name"):]
    with pytest.raises(ConfigError, match="job name 'fraud-daily' is used twice"):
        parse_config(twice, environ={"GW": "http://gw"})
    config = parse_config(GOOD, environ={"GW": "http://gw"})
    with pytest.raises(ConfigError, match="unknown job 'nope'; jobs in this config: fraud-daily"):
        config.job("nope")


def test_yaml_syntax_error_has_a_position() -> None:
    with pytest.raises(ConfigError, match=r"not valid YAML at line 3, column 1: expected .,. or .\]."):
        parse_config("jobs:\n  - name: [unclosed\n", source="s.yaml")


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("15m", 900), ("1h30m", 5400), ("2d", 172800),
                                           ("1w", 604800), (90, 90), ("0", 0)])
def test_durations(text, seconds) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


def test_window_semantics() -> None:
    window = plan_window(parse_timestamp("2026-11-25T10:00:00Z"), timedelta(days=1), timedelta(days=2))
    assert window.start == datetime(2026, 11, 22, 10, tzinfo=timezone.utc)
    assert window.end == datetime(2026, 11, 23, 10, tzinfo=timezone.utc)
    assert window.labels_as_of == window.evaluated_at == datetime(2026, 11, 25, 10, tzinfo=timezone.utc)
    assert parse_timestamp("2026-11-25T12:00:00+02:00") == datetime(2026, 11, 25, 10, tzinfo=timezone.utc)
    assert parse_timestamp("2026-11-25") == datetime(2026, 11, 25, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="invalid timestamp"):
        parse_timestamp("yesterday")


def test_redact_hides_passwords() -> None:
    assert redact("postgresql://bob:pa55@db/x failed") == "postgresql://bob:***@db/x failed"
    assert redact("host=db password=pa55 user=bob") == "host=db password=*** user=bob"
