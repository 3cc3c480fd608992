"""Durations as people write them in a schedule file: ``30s``, ``15m``, ``1h``, ``2d``, ``1w``, ``1h30m``."""

from __future__ import annotations

import math
import re
from datetime import timedelta

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+)([smhdw])")
_WHOLE = re.compile(r"^(?:\d+[smhdw])+$")


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse ``"1h30m"``-style text (or a number of seconds) into a timedelta.

    Raises ``ValueError`` with a message that shows the accepted form.
    """
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise ValueError(f"invalid duration {text!r} (use e.g. 30m, 1h, 7d)")
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError(f"invalid duration {text!r}: must not be negative")
        if not math.isfinite(text) or text != int(text):
            # 'window: 1.5' means 1.5 of something, but of what? Never silently 1.5 seconds.
            raise ValueError(f"invalid duration {text!r}: give a unit (e.g. 90m, 36h) instead of a fraction")
        try:
            return timedelta(seconds=text)
        except (OverflowError, ValueError):
            raise ValueError(f"invalid duration {text!r}: not a number of seconds a timedelta can hold") from None
    compact = str(text).strip().replace(" ", "")
    if compact == "0":
        return timedelta(0)
    if not _WHOLE.match(compact):
        raise ValueError(f"invalid duration {text!r} (use e.g. 30m, 1h, 7d, 1h30m)")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(compact))
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"invalid duration {text!r}: too long (at most {timedelta.max.days} days)") from None


def format_duration(delta: timedelta) -> str:
    """The shortest ``1d2h``-style text for a whole number of seconds."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
