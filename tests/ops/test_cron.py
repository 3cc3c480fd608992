"""Cron fire times follow crontab(5), checked against a brute-force reading of its definition."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from evaljobs.windows import fire_times, latest_fire_time, previous_fire_time

UTC = timezone.utc
# Day-of-week numbers follow crontab(5) (0 and 7 are Sunday), unlike APScheduler's own numbering;
# a restricted day of month and day of week fire on either.
SCHEDULES = ["* * * * *", "*/15 * * * *", "15 */6 * * *", "30 6 * * *", "0 0 * * 0", "0 0 * * 7", "0 9-17 * * 1-5",
             "0 0 1 * *", "0 12 1,15 * 5", "0 6 * * */2", "0 6 * * 5-7"]


def brute_force(schedule: str, start: datetime, end: datetime) -> list[datetime]:
    """Every whole minute in [start, end) that the cron expression matches, by crontab(5)'s definition."""
    minute, hour, day, month, weekday = schedule.split()

    def matches(field: str, value: int) -> bool:
        for part in field.split(","):
            step = 1
            if "/" in part:
                part, step_text = part.split("/")
                step = int(step_text)
            if part == "*":
                low, high = 0, 10**6
            elif "-" in part:
                low, high = map(int, part.split("-"))
            else:
                low = high = int(part)
            if low <= value <= high and (value - (0 if part == "*" else low)) % step == 0:
                return True
        return False

    out = []
    moment = start.replace(second=0, microsecond=0)
    if moment < start:
        moment += timedelta(minutes=1)
    while moment < end:
        day_matches = matches(day, moment.day)
        sunday_first = moment.isoweekday() % 7
        weekday_matches = matches(weekday, sunday_first) or (sunday_first == 0 and matches(weekday, 7))
        if day != "*" and weekday != "*":
            date_matches = day_matches or weekday_matches
        else:
            date_matches = day_matches and weekday_matches
        if matches(minute, moment.minute) and matches(hour, moment.hour) and matches(month, moment.month) and date_matches:
            out.append(moment)
        moment += timedelta(minutes=1)
    return out


def test_weekdays_are_numbered_as_in_crontab() -> None:
    monday = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday
    week = list(fire_times("0 9 * * 1-5", monday - timedelta(days=1), monday + timedelta(days=6)))
    assert [d.strftime("%a") for d in week] == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    assert [d.strftime("%a") for d in fire_times("0 9 * * 0", monday, monday + timedelta(days=7))] == ["Sun"]


@settings(max_examples=60, deadline=None)
@given(schedule=st.sampled_from(SCHEDULES),
       start=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)),
       hours=st.integers(1, 80))
def test_fire_times_match_the_cron_definition(schedule, start, hours) -> None:
    end = start + timedelta(hours=hours)
    want = brute_force(schedule, start, end)
    assert list(fire_times(schedule, start, end)) == want
    if want:
        assert previous_fire_time(schedule, want[-1] + timedelta(seconds=1)) == want[-1]
        assert latest_fire_time(schedule, want[-1]) == want[-1]
        assert previous_fire_time(schedule, want[-1]) < want[-1]
        if len(want) > 1:
            assert previous_fire_time(schedule, want[-1]) == want[-2]
