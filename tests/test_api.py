"""The Python API: evaluate() equals what `evaljobs run --dry-run --output json` prints, and
to_frame() holds the same numbers as tidy rows."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

import evaljobs
from evaljobs import cli, demodata
from evaljobs.windows import parse_timestamp

REPOSITORY = Path(__file__).resolve().parents[1]
AT = "2026-11-20T06:30:00Z"


@pytest.fixture
def demo_config(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    demodata.build(sqlite_url, now=parse_timestamp(AT), days=6)
    monkeypatch.setenv("EVALJOBS_DATABASE_URL", sqlite_url)
    return str(REPOSITORY / "schedules.yaml")


def _without_timings(payload: dict) -> dict:
    return {key: value for key, value in payload.items() if key not in ("duration_seconds",)}


def test_evaluate_returns_what_the_cli_prints(demo_config, capsys) -> None:
    assert cli.main(["run", "fraud-daily", "--config", demo_config, "--at", AT, "--dry-run", "--output", "json"]) == 0
    [printed] = json.loads(capsys.readouterr().out)["jobs"]

    result = evaljobs.evaluate(demo_config, "fraud-daily", at=AT)
    assert isinstance(result, evaljobs.JobResult)
    assert _without_timings(result.to_dict()) == _without_timings(printed)
    # A loaded config, a Job object and an aware datetime give the same window and numbers.
    config = evaljobs.load_config(demo_config)
    again = evaljobs.evaluate(config, config.job("fraud-daily"), at=parse_timestamp(AT))
    assert [v.to_dict() for v in again.versions] == [v.to_dict() for v in result.versions]


def test_to_frame_is_tidy_and_holds_the_records_numbers(demo_config) -> None:
    result = evaljobs.evaluate(demo_config, "intent-6h", at=AT)
    frame = evaljobs.to_frame(result)
    assert list(frame.columns) == list(evaljobs.api.FRAME_COLUMNS)
    assert len(frame) == len(list(evaljobs.tidy_rows(result))) > 0
    for version in result.versions:
        rows = frame[frame.model_version == version.model_version]
        overall = rows[rows.metric.eq("accuracy") & rows["class"].isna() & rows.average.isna()]
        assert overall.value.tolist() == [version.metrics.accuracy]
        macro_f1 = rows[rows.metric.eq("f1") & rows.average.eq("macro")]
        assert macro_f1.value.tolist() == [version.metrics.macro.f1]
        for cls, stats in version.metrics.per_class.items():
            recall = rows[rows.metric.eq("recall") & rows["class"].eq(cls)]
            assert recall.value.tolist() == [stats.recall]
        drift = rows[rows.metric.eq("drift_score") & rows.feature.eq("country") & rows.method.eq("psi")]
        assert drift.value.tolist() == [version.drift.features[[f.feature for f in version.drift.features]
                                                                .index("country")].statistic("psi").score]


def test_evaluate_refuses_a_naive_time(demo_config) -> None:
    with pytest.raises(evaljobs.ConfigError, match="has no time zone"):
        evaljobs.evaluate(demo_config, "fraud-daily", at=datetime(2026, 11, 20, 6, 30))
