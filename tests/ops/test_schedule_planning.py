"""Catch-up planning, with the time passed in (no clock is read)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from evaljobs.config import CatchUp, parse_config
from evaljobs.errors import ConfigError
from evaljobs.ops.scheduler import catch_up_candidates, plan_due

UTC = timezone.utc


NOW = datetime(2026, 3, 10, 12, 20, 30, tzinfo=UTC)
HOURLY = "0 * * * *"


def hours_before(n: int) -> datetime:
    return datetime(2026, 3, 10, 12, tzinfo=UTC) - timedelta(hours=n)


def test_candidates_are_bounded_by_count_and_age() -> None:
    assert catch_up_candidates(HOURLY, NOW, CatchUp(windows=3), None) == [hours_before(0), hours_before(1), hours_before(2)]
    assert catch_up_candidates(HOURLY, NOW, CatchUp(windows=3), hours_before(0)) == [hours_before(1), hours_before(2),
                                                                                      hours_before(3)]
    assert catch_up_candidates(HOURLY, NOW, CatchUp(within=timedelta(hours=2)), None) == [hours_before(0), hours_before(1)]
    assert catch_up_candidates(HOURLY, NOW, CatchUp(windows=5, within=timedelta(minutes=90)), None) == [hours_before(0),
                                                                                                        hours_before(1)]
    assert catch_up_candidates(HOURLY, NOW, CatchUp(windows=0), None) == []


def test_after_three_missed_windows_the_scheduler_catches_up_as_configured() -> None:
    last_done = hours_before(3)  # down since: 12:00, 11:00 and 10:00 were missed
    plan = plan_due(HOURLY, NOW, CatchUp(windows=3), None, done={last_done}, last_done=last_done, has_history=True)
    assert plan.due == [hours_before(2), hours_before(1), hours_before(0)] and plan.beyond_catch_up == 0
    plan = plan_due(HOURLY, NOW, CatchUp(windows=2), None, done=set(), last_done=last_done, has_history=True)
    assert plan.due == [hours_before(1), hours_before(0)] and plan.beyond_catch_up == 1
    assert plan.beyond_range == (hours_before(2), hours_before(1))  # evaljobs backfill --from --to


def test_a_cron_fire_runs_its_window_and_retries_failed_ones() -> None:
    fired = hours_before(0)
    done = {hours_before(1), hours_before(3)}  # 10:00 failed (it has no finished result)
    plan = plan_due(HOURLY, NOW, CatchUp(windows=3), fired, done=done, last_done=hours_before(1), has_history=True)
    assert plan.due == [hours_before(2), fired]
    plan = plan_due(HOURLY, NOW, CatchUp(windows=0), fired, done=done, last_done=hours_before(1), has_history=True)
    assert plan.due == [fired]


def test_a_new_job_evaluates_its_latest_window_only_and_a_done_window_is_not_repeated() -> None:
    plan = plan_due(HOURLY, NOW, CatchUp(windows=3), None, done=set(), last_done=None, has_history=False)
    assert plan.due == [hours_before(0)] and plan.no_history
    plan = plan_due(HOURLY, NOW, CatchUp(windows=3), hours_before(0), done=set(), last_done=None, has_history=False)
    assert plan.due == [hours_before(0)]
    plan = plan_due(HOURLY, NOW, CatchUp(windows=3), hours_before(0), done={hours_before(0), hours_before(1)},
                    last_done=hours_before(0), has_history=True)
    assert plan.due == [hours_before(3), hours_before(2)]  # a cron entry did 12:00 already


@pytest.mark.parametrize("text, expected", [
    ("3", CatchUp(windows=3)),
    ("2d", CatchUp(within=timedelta(days=2))),
    ("{windows: 10, within: 12h}", CatchUp(windows=10, within=timedelta(hours=12))),
    ("0", CatchUp(windows=0)),
])
def test_catch_up_settings(text, expected) -> None:
    config = parse_config(f"scheduler: {{catch_up: {text}}}\njobs:\n  - {{name: a, model: m, task: multiclass, "
                          f"window: 1h, schedule: '0 * * * *', catch_up: {text}}}\n")
    assert config.scheduler.catch_up == expected == config.jobs[0].catch_up


@pytest.mark.parametrize("text, message", [
    ("scheduler: {catch_up: -1}", "scheduler.catch_up.windows: Input should be greater than or equal to 0"),
    ("scheduler: {catch_up: {}}", "catch_up needs a limit"),
    ("scheduler: {catch_up: soon}", "invalid duration 'soon'"),
    ("scheduler: {misfire_grace: 1m}", "scheduler.misfire_grace: is not a known setting"),
    ("results: {claim_expiry: 0}", "claim_expiry must be longer than 0"),
])
def test_bad_scheduler_settings_are_one_line_errors(text, message) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text + "\njobs:\n  - {name: a, model: m, task: multiclass, window: 1h, schedule: '0 * * * *'}\n")
    assert message in str(info.value) and "\n" not in str(info.value)
