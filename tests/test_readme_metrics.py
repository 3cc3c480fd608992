"""The README's metric tables (Metrics, and the sections that own a family, such as Drift)
list every family evaljobs can emit (exposition.FAMILIES)."""

from __future__ import annotations

import re
from pathlib import Path

from evaljobs import exposition

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_family_is_in_a_metrics_table() -> None:
    rows = "\n".join(line for line in README.splitlines() if line.startswith("| `"))
    documented = set(re.findall(r"`((?:model|evaljobs)_[a-z0-9_]+)", rows))
    for name in exposition.FAMILIES:
        # A counter is documented with its _total series, a histogram with its _bucket series.
        assert documented & {name, f"{name}_total", f"{name}_bucket"}, f"{name} is missing from the README's metric table"
