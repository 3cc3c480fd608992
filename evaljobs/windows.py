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
    from apscheduler.triggers.cron import CronTrigger


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


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 timestamp (``2026-11-25T10:00:00Z``, or a date); naive means UTC."""
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        return as_utc(datetime.fromisoformat(cleaned))
    except ValueError:
        raise ValueError(f"invalid timestamp {text!r} (use ISO 8601, e.g. 2026-11-25T10:00:00Z)") from None


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
@lru_cache(maxsize=256)
def cron_trigger(schedule: str) -> "CronTrigger":
    """APScheduler's trigger for a 5-field cron expression, in UTC."""
    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger.from_crontab(schedule, timezone=timezone.utc)


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
