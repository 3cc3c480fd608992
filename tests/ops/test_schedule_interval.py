"""The schedule interval pushed with every group, which the staleness alert compares against."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from evaljobs import exposition
from evaljobs.windows import schedule_interval

from tests.dbdata import Prediction
from tests.db.test_pipeline_db import AT, evaluate, load_url, make_job

WEDNESDAY = datetime(2026, 11, 25, 22, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("cron, interval", [
    ("30 6 * * *", timedelta(days=1)),
    ("15 */6 * * *", timedelta(hours=6)),
    ("*/5 * * * *", timedelta(minutes=5)),
    ("0 9 * * 1-5", timedelta(days=3)),        # Friday to Monday is the longest planned pause
    ("0 9,17 * * *", timedelta(hours=16)),
    ("0 0 1 * *", timedelta(days=31)),
])
def test_longest_gap_between_runs(cron: str, interval: timedelta) -> None:
    assert schedule_interval(cron, WEDNESDAY) == interval


def test_interval_is_pushed_in_every_group(sqlite_url: str) -> None:
    start = AT - timedelta(days=2)
    load_url(sqlite_url, [Prediction("a", "v1", start, "1", 0.5, 0.1)], [])
    result = evaluate(sqlite_url, make_job(schedule="15 */6 * * *"))
    assert result.schedule_interval_seconds == 6 * 3600
    groups = exposition.groups(result, success_timestamp=1.0)
    assert [key for key, _ in groups] == [{"model": "m"}, {"model": "m", "model_version": "v1"}]
    for _, families in groups:
        [interval] = [f for f in families if f.name == "evaljobs_schedule_interval_seconds"]
        assert interval.type == "gauge" and interval.samples[0].value == 21600.0
