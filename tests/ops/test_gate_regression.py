"""evaljobs gate on a regression job: max_mae, max_rmse, min_r2 and the MAE check against a baseline."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ttest_ind
from sklearn import metrics as skm

from evaljobs import cli
from evaljobs.ops.gate import welch_interval

from tests.db.test_pipeline_db import AT, load_url
from tests.db.test_regression_db import delivery_rows
from tests.ops.test_gate import cases


@settings(max_examples=60, deadline=None)
@given(a=st.lists(st.floats(0, 100), min_size=2, max_size=40), b=st.lists(st.floats(0, 100), min_size=2, max_size=40),
       confidence=st.sampled_from([0.9, 0.95, 0.99]))
def test_welch_interval_equals_scipy(a, b, confidence) -> None:
    if np.var(a) == 0 and np.var(b) == 0:
        return  # scipy returns NaN there; the gate treats it as an exact difference
    want = ttest_ind(a, b, equal_var=False).confidence_interval(confidence)
    got = welch_interval(np.mean(a), np.var(a, ddof=1), len(a), np.mean(b), np.var(b, ddof=1), len(b), confidence)
    assert got == pytest.approx((want.low, want.high), rel=1e-9, abs=1e-9)


def version_pairs(rng: random.Random, n: int, noise: float) -> list[tuple[float, float]]:
    """(predicted, actual) delivery times in minutes with Gaussian errors of the given spread."""
    out = []
    for _ in range(n):
        actual = round(rng.uniform(15, 60), 2)
        out.append((round(actual + rng.gauss(0, noise), 2), actual))
    return out


def write(tmp_path: Path, url: str, gate: str) -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text(f"database: '{url}'\njobs:\n  - name: eta\n    model: m\n    task: regression\n"
                    f"    window: 1d\n    label_delay: 1d\n    schedule: '0 0 * * *'\n    gate: {gate}\n")
    return path


def run_gate(tmp_path: Path, config: Path, *args: str) -> tuple[int, dict[str, str], str]:
    junit, markdown = tmp_path / "gate.xml", tmp_path / "gate.md"
    code = cli.main(["gate", "eta", "--config", str(config), "--at", AT.isoformat(), "--junit", str(junit),
                     "--markdown", str(markdown), *args])
    return code, cases(ET.parse(junit).getroot()), markdown.read_text()


def test_regression_gate_passes_and_fails(db_url, tmp_path, capsys) -> None:
    rng = random.Random(3)
    good, bad = version_pairs(rng, 300, 3.0), version_pairs(rng, 300, 6.0)
    p1, l1 = delivery_rows("v1", good)
    p2, l2 = delivery_rows("v2", bad, start=1000)
    load_url(db_url, p1 + p2, l1 + l2)
    gate = "{max_mae: 4, max_rmse: 5, min_r2: 0.85, max_regression: {mae: 0.5}}"
    config = write(tmp_path, db_url, gate)

    code, outcome, markdown = run_gate(tmp_path, config, "--candidate", "v1", "--baseline", "v2")
    assert code == 0, markdown
    assert outcome == {"max_mae": "pass", "max_rmse": "pass", "min_r2": "pass", "max_regression[mae]": "pass"}
    y, yhat = [a for _, a in good], [p for p, _ in good]
    [mae_row] = [line for line in markdown.splitlines() if "`max_mae`" in line]
    assert float(mae_row.split("|")[3]) == pytest.approx(skm.mean_absolute_error(y, yhat), abs=1e-3)
    assert "significantly better" in markdown

    code, outcome, markdown = run_gate(tmp_path, config, "--candidate", "v2", "--baseline", "v1")
    assert code == 1
    assert outcome == {"max_mae": "fail", "max_rmse": "fail", "min_r2": "fail", "max_regression[mae]": "fail"}
    a = np.abs(np.subtract(*zip(*bad)))
    b = np.abs(np.subtract(*zip(*good)))
    want = ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert f"[{want.low:+.4g}, {want.high:+.4g}]" in markdown
    assert "significantly worse than the baseline by more than 0.5" in markdown
    capsys.readouterr()


def test_mae_check_is_skipped_without_baseline(sqlite_url, tmp_path, capsys) -> None:
    predictions, labels = delivery_rows("v1", version_pairs(random.Random(1), 20, 2.0))
    load_url(sqlite_url, predictions, labels)
    code, outcome, _ = run_gate(tmp_path, write(tmp_path, sqlite_url, "{max_mae: 10, max_regression: {mae: 1}}"))
    assert code == 0 and outcome == {"max_mae": "pass", "max_regression[mae]": "skipped"}
    capsys.readouterr()
