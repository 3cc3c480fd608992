"""Window planning: which predictions an evaluation at time T looks at.

An evaluation *at* ``T`` covers predictions with ``predicted_at`` in
``[T - label_delay - window, T - label_delay)`` and uses the labels that had arrived
by ``labels_as_of`` (normally ``T``). Time is always passed in, never read here.
All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger


@dataclass(frozen=True)
class Window:
    """A half-open interval of prediction times, and when its labels were read."""

    start: datetime
    end: datetime
    evaluated_at: datetime
    labels_as_of: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start


def as_utc(moment: datetime) -> datetime:
    """Treat naive datetimes as UTC; convert aware ones to UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def iso(moment: datetime) -> str:
    """A UTC instant as evaljobs prints it everywhere: ``2026-11-30T06:00:00Z``."""
    return f"{as_utc(moment):%Y-%m-%dT%H:%M:%SZ}"


def span(start: datetime, end: datetime) -> str:
    """A time range as evaljobs prints it: ``START..END``."""
    return f"{iso(start)}..{iso(end)}"


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 timestamp (``2026-11-25T10:00:00Z``, or a date); naive means UTC."""
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        moment = as_utc(datetime.fromisoformat(cleaned))
    except (ValueError, OverflowError):
        raise ValueError(f"invalid timestamp {text!r} (use ISO 8601, e.g. 2026-11-25T10:00:00Z)") from None
    # Windows reach back by their length and delay: keep far from datetime's limits.
    if not 1970 <= moment.year <= 9000:
        raise ValueError(f"timestamp {text!r} is out of range (years 1970 to 9000)")
    return moment


def plan_window(
    evaluated_at: datetime,
    window: timedelta,
    label_delay: timedelta,
    labels_as_of: datetime | None = None,
) -> Window:
    """The window an evaluation at ``evaluated_at`` covers (see the module docstring)."""
    at = as_utc(evaluated_at)
    end = at - label_delay
    return Window(
        start=end - window,
        end=end,
        evaluated_at=at,
        labels_as_of=as_utc(labels_as_of) if labels_as_of is not None else at,
    )


# ---- schedule fire times (scheduler, catch-up and backfill) ---------------------------------
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _weekday(token: str) -> int:
    text = token.strip().lower()
    if text in _WEEKDAYS:
        return _WEEKDAYS.index(text)
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text) % 7
    raise ValueError(f"day of week {token!r} is not 0-7 or sun-sat")


def standard_day_of_week(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday) as APScheduler weekday names.

    APScheduler 3 numbers weekdays from Monday (apscheduler issue #455), so ``1-5`` given to
    ``CronTrigger.from_crontab`` would mean Tuesday to Saturday. The field is expanded to the
    days it means in crontab(5) and written as names, which APScheduler reads unambiguously.
    """
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"day of week step {step_text!r} is not a positive number")
        if base == "*":
            low, high = 0, 6
        elif "-" in base:
            first, last = base.split("-", 1)
            low, high = _weekday(first), _weekday(last)
            if last.strip() == "7":
                high = 7
            if high < low:
                raise ValueError(f"day of week range {base!r} runs backwards")
        else:
            low = _weekday(base)
            high = 6 if step else low
        days.update(day % 7 for day in range(low, high + 1, step or 1))
    return ",".join(_WEEKDAYS[day] for day in sorted(days))


@lru_cache(maxsize=256)
def cron_trigger(schedule: str) -> BaseTrigger:
    """An APScheduler trigger for a 5-field crontab(5) expression, in UTC.

    Two crontab rules APScheduler's ``from_crontab`` does not follow are applied: weekdays
    are numbered from Sunday (0 or 7), and when both day of month and day of week are
    restricted, a day matching either fires (an OR of two triggers).
    """
    from apscheduler.triggers.combining import OrTrigger
    from apscheduler.triggers.cron import CronTrigger

    fields = schedule.split()
    if len(fields) != 5:
        raise ValueError(f"{schedule!r} is not a 5-field cron expression (e.g. '15 * * * *')")
    minute, hour, day, month, day_of_week = fields
    weekdays = standard_day_of_week(day_of_week)

    def trigger(day: str, day_of_week: str) -> CronTrigger:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=day_of_week,
                           timezone=timezone.utc)

    # A day of month that no listed month has (30 2, 31 4) never fires: alone it is a schedule
    # that never runs, and in an OR it would make APScheduler search for years at every lookup.
    days_occur = day == "*" or _day_occurs(trigger(day, "*"))
    if day != "*" and day_of_week != "*":
        return OrTrigger([trigger(day, "*"), trigger("*", weekdays)]) if days_occur else trigger("*", weekdays)
    if not days_occur:
        raise ValueError(f"it never fires: no month of {month!r} has day {day!r}")
    return trigger(day, weekdays)


def _day_occurs(trigger: BaseTrigger) -> bool:
    """Whether the day-of-month and month fields of ``trigger`` match some date (leap years too)."""
    fields = {f.name: f for f in trigger.fields}  # type: ignore[attr-defined]
    moment = datetime(2024, 1, 1)  # a leap year: 29 February counts
    while moment.year == 2024:
        if all(fields[name].get_next_value(moment) == fields[name].get_value(moment) for name in ("month", "day")):
            return True
        moment += timedelta(days=1)
    return False


def fire_times(schedule: str, start: datetime, end: datetime) -> Iterator[datetime]:
    """The schedule's fire times in ``[start, end)``, oldest first."""
    trigger = cron_trigger(schedule)
    end = as_utc(end)
    moment = trigger.get_next_fire_time(None, as_utc(start))
    while moment is not None and moment < end:
        yield moment.astimezone(timezone.utc)
        # Cron fires on whole minutes, so the next one is at least a second later.
        moment = trigger.get_next_fire_time(None, moment + timedelta(seconds=1))


def previous_fire_time(schedule: str, before: datetime) -> datetime | None:
    """The schedule's latest fire time strictly before ``before`` (None if none in ~5 years)."""
    before = as_utc(before)
    span = timedelta(minutes=1)
    while span <= timedelta(days=5 * 366):
        found = None
        for moment in fire_times(schedule, before - span, before):
            found = moment
        if found is not None:
            return found
        span *= 2
    return None


def latest_fire_time(schedule: str, at: datetime) -> datetime | None:
    """The schedule's latest fire time at or before ``at``."""
    return previous_fire_time(schedule, as_utc(at) + timedelta(microseconds=1))


def schedule_interval(cron: str, after: datetime, runs: int = 64) -> timedelta:
    """The longest gap between consecutive runs of a 5-field UTC cron schedule.

    Measured over the next ``runs`` runs after ``after``, so an irregular schedule (weekdays
    only, say) reports its longest pause: a staleness alert at twice this never fires on a
    planned weekend.
    """
    # crontab(5) semantics (Sunday is 0 or 7; day-of-month OR day-of-week), see cron_trigger.
    trigger = cron_trigger(cron)
    previous = trigger.get_next_fire_time(None, as_utc(after))
    longest = timedelta(0)
    for _ in range(runs):
        following = trigger.get_next_fire_time(previous, previous)
        if following is None:
            break
        longest = max(longest, following - previous)
        previous = following
    return longest
