"""A results store the report tests read: the demo's fraud job backfilled over a fixed fortnight."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from evaljobs import cli, demodata
from evaljobs.windows import iso

UTC = timezone.utc
#: The end of the demo history; fixed, so every run stores the same windows.
REPORT_NOW = datetime(2026, 3, 15, 7, 0, tzinfo=UTC)
REPOSITORY = Path(__file__).resolve().parents[2]


def demo_config(root: Path, url: str) -> Path:
    """The repository's schedules.yaml, pointed at ``url`` and without a Pushgateway."""
    config = yaml.safe_load((REPOSITORY / "schedules.yaml").read_text())
    config["database"] = url
    config.pop("pushgateway", None)
    path = root / "schedules.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def fraud_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``(config path, database URL)`` of a SQLite store holding 14 backfilled days of fraud-daily."""
    root = tmp_path_factory.mktemp("report-store")
    url = f"sqlite:///{root / 'demo.db'}"
    demodata.build(url, now=REPORT_NOW, days=14)
    config = demo_config(root, url)
    code = cli.main(["backfill", "fraud-daily", "--config", str(config),
                     "--from", iso(REPORT_NOW - timedelta(days=14)), "--to", iso(REPORT_NOW)])
    assert code in (0, 3), "the backfill failed"  # 3: the first windows hold only a few predictions
    return config, url


@pytest.fixture(scope="session")
def fraud_report(fraud_store: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML report of that store, as ``evaljobs report`` writes it."""
    config, _url = fraud_store
    path = tmp_path_factory.mktemp("report") / "fraud-daily.html"
    code = cli.main(["report", "fraud-daily", "--config", str(config), "--to", iso(REPORT_NOW), "--html", str(path)])
    assert code == 0
    return path
