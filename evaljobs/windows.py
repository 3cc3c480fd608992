"""Window planning: which predictions an evaluation at time T looks at.

An evaluation *at* ``T`` covers predictions with ``predicted_at`` in
``[T - label_delay - window, T - label_delay)`` and uses the labels that had arrived
by ``labels_as_of`` (normally ``T``). Time is always passed in, never read here.
All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone


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


def schedule_interval(cron: str, after: datetime, runs: int = 64) -> timedelta:
    """The longest gap between consecutive runs of a 5-field UTC cron schedule.

    Measured over the next ``runs`` runs after ``after``, so an irregular schedule (weekdays
    only, say) reports its longest pause: a staleness alert at twice this never fires on a
    planned weekend.
    """
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(cron, timezone="UTC")
    previous = trigger.get_next_fire_time(None, as_utc(after))
    longest = timedelta(0)
    for _ in range(runs):
        following = trigger.get_next_fire_time(previous, previous)
        if following is None:
            break
        longest = max(longest, following - previous)
        previous = following
    return longest
