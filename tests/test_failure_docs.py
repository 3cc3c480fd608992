"""Every row of the README's "Failure behaviour" table is backed by a test that exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_failure_row_names_existing_tests() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Failure behaviour"):]
    section = section[:section.index("\n## ", 1)]
    rows = [line for line in section.splitlines() if line.startswith("| ") and line.count(" | ") >= 5]
    rows = rows[2:]  # the header and its rule
    assert len(rows) >= 15
    for row in rows:
        references = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", row)
        assert references, row
        for path, name in references:
            tree = ast.parse((ROOT / path).read_text())
            names = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
            assert name in names, f"{path}::{name} (README, Failure behaviour) does not exist"
