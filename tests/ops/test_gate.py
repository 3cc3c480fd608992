"""evaljobs gate: thresholds pass and fail on purpose-built data; intervals equal scipy's and statsmodels'."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.core import GaugeMetricFamily
from scipy.stats import binomtest
from statsmodels.stats.proportion import confint_proportions_2indep

from evaljobs import cli, exposition
from evaljobs.ops.gate import newcombe_interval, wilson_interval

from tests.dbdata import Label, Prediction
from tests.db.test_pipeline_db import AT, load_url

WINDOW_TIME = AT - timedelta(hours=12)  # inside the window evaluated at AT (1d window, no label delay)


# ---- the statistics, against their references ------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(trials=st.integers(1, 5000), share=st.floats(0, 1), confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_wilson_interval_equals_scipy(trials, share, confidence) -> None:
    successes = round(share * trials)
    want = binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    assert wilson_interval(successes, trials, confidence) == pytest.approx((want.low, want.high), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(n_a=st.integers(1, 3000), n_b=st.integers(1, 3000), a=st.floats(0, 1), b=st.floats(0, 1),
       confidence=st.sampled_from([0.9, 0.95, 0.99]))
def test_newcombe_interval_equals_statsmodels(n_a, n_b, a, b, confidence) -> None:
    k_a, k_b = round(a * n_a), round(b * n_b)
    want = confint_proportions_2indep(k_a, n_a, k_b, n_b, method="newcomb", compare="diff", alpha=1 - confidence)
    assert newcombe_interval(k_a, n_a, k_b, n_b, confidence) == pytest.approx(want, abs=1e-9)


def test_newcombe_reproduces_the_published_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873-890, table II, example (a): 56/70 - 48/80, method 10.
    low, high = newcombe_interval(56, 70, 48, 80, 0.95)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    assert wilson_interval(0, 0) is None and newcombe_interval(1, 0, 1, 1) is None


# ---- purpose-built data ---------------------------------------------------------------------------
def version_rows(version: str, tp: int, fn: int, tn: int, fp: int, start: int = 0):
    """Predictions of one binary version with exactly these confusion counts, all labelled."""
    cells = [("1", "1")] * tp + [("1", "0")] * fn + [("0", "0")] * tn + [("0", "1")] * fp
    predictions, labels = [], []
    for i, (actual, predicted) in enumerate(cells, start=start):
        pid = f"{version}-{i}"
        predictions.append(Prediction(pid, version, WINDOW_TIME, predicted, 0.9 if predicted == "1" else 0.1))
        labels.append(Label(pid, actual, WINDOW_TIME + timedelta(minutes=5)))
    return predictions, labels


def load_versions(url: str, **versions: tuple[int, int, int, int]) -> None:
    predictions, labels = [], []
    for version, counts in versions.items():
        p, lab = version_rows(version, *counts)
        predictions += p
        labels += lab
    load_url(url, predictions, labels)


GATE = """gate:
      min_accuracy: 0.9
      min_recall: {per_class: {1: 0.8}}
      min_labeled_predictions: 300
      max_regression: {accuracy: 0.02, recall: 0.05}"""


def write_config(tmp_path: Path, url: str, gate: str = GATE) -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text(f"database: '{url}'\njobs:\n  - name: fraud-gate\n    model: m\n    task: binary\n"
                    f"    positive_label: 1\n    window: 1d\n    schedule: '0 0 * * *'\n    {gate}\n")
    return path


def gate(capsys, config: Path, tmp_path: Path, *args: str) -> tuple[int, str, ET.Element, str]:
    markdown, junit = tmp_path / "gate.md", tmp_path / "gate.xml"
    code = cli.main(["gate", "fraud-gate", "--config", str(config), "--at", AT.isoformat(),
                     "--markdown", str(markdown), "--junit", str(junit), *args])
    out = capsys.readouterr().out
    return code, markdown.read_text(), ET.parse(junit).getroot(), out


def cases(root: ET.Element) -> dict[str, str]:
    """test-case name -> pass | fail | error | skipped, from the JUnit XML."""
    out = {}
    for case in root.iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        out[case.get("name")] = {"failure": "fail"}.get(kinds[0], kinds[0]) if kinds else "pass"
    return out


def row(markdown: str, name: str) -> str:
    [line] = [line for line in markdown.splitlines() if f"`{name}`" in line]
    return line


def test_a_good_candidate_passes(sqlite_url, tmp_path, capsys) -> None:
    # candidate v2: accuracy 0.96, recall(1) 0.92 over 400; baseline v1: 0.955, 0.91.
    load_versions(sqlite_url, v1=(182, 18, 200, 0), v2=(184, 16, 200, 0))
    code, markdown, root, out = gate(capsys, write_config(tmp_path, sqlite_url), tmp_path,
                                     "--candidate", "v2", "--baseline", "v1")
    assert code == 0
    assert out == markdown and markdown.startswith("### evaljobs gate `fraud-gate`: ✅ passed")
    assert cases(root) == {"min_labeled_predictions": "pass", "min_accuracy": "pass", "min_recall[1]": "pass",
                           "max_regression[accuracy]": "pass", "max_regression[recall:0]": "pass",
                           "max_regression[recall:1]": "pass"}
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("6", "0", "0")
    ci = binomtest(384, 400).proportion_ci(0.95, method="wilson")
    assert f"0.9600 [{ci.low:.4f}, {ci.high:.4f}]" in row(markdown, "min_accuracy")
    assert "not significantly different from the baseline" in row(markdown, "max_regression[accuracy]")


def test_a_worse_candidate_fails_with_reasons(db_url, tmp_path, capsys) -> None:
    # candidate v2: accuracy 0.80, recall(1) 0.60; baseline v1: accuracy 0.955.
    load_versions(db_url, v1=(182, 18, 200, 0), v2=(120, 80, 200, 0))
    code, markdown, root, _ = gate(capsys, write_config(tmp_path, db_url), tmp_path,
                                   "--candidate", "v2", "--baseline", "v1")
    assert code == 1
    assert "❌ failed (4 of 6 checks)" in markdown
    assert cases(root) == {"min_labeled_predictions": "pass", "min_accuracy": "fail", "min_recall[1]": "fail",
                           "max_regression[accuracy]": "fail", "max_regression[recall:0]": "pass",
                           "max_regression[recall:1]": "fail"}
    failure = next(c for c in root.iter("testcase") if c.get("name") == "min_accuracy").find("failure")
    assert failure.get("message").startswith("accuracy 0.8000 is below 0.9000; the whole interval is below")
    low, high = confint_proportions_2indep(382, 400, 320, 400, method="newcomb", compare="diff")
    assert f"[{low:+.4f}, {high:+.4f}]" in row(markdown, "max_regression[accuracy]")
    assert "significantly worse than the baseline by more than 0.0200" in row(markdown, "max_regression[accuracy]")
    assert root.find("testsuite").get("failures") == "4"


def test_noise_does_not_fail_the_comparison_but_too_few_labels_do(sqlite_url, tmp_path, capsys) -> None:
    # 40 labelled each: candidate 0.90 vs baseline 0.95 is a 0.05 drop, beyond the margin but not significant.
    load_versions(sqlite_url, v1=(19, 1, 19, 1), v2=(18, 2, 18, 2))
    code, markdown, root, _ = gate(capsys, write_config(tmp_path, sqlite_url), tmp_path,
                                   "--candidate", "v2", "--baseline", "v1")
    assert code == 1
    result = cases(root)
    assert result["max_regression[accuracy]"] == "pass" and result["min_accuracy"] == "pass"
    assert result["min_labeled_predictions"] == "fail"
    assert "but not significantly" in row(markdown, "max_regression[accuracy]")
    assert "straddles the threshold" in row(markdown, "min_accuracy")


def test_without_a_baseline_the_comparison_is_skipped(sqlite_url, tmp_path, capsys) -> None:
    load_versions(sqlite_url, v2=(184, 16, 200, 0))
    code, markdown, root, _ = gate(capsys, write_config(tmp_path, sqlite_url), tmp_path)
    assert code == 0  # the only version in the window is the candidate
    assert cases(root)["max_regression[accuracy]"] == "skipped"
    assert cases(root)["max_regression[recall]"] == "skipped"
    assert root.find("testsuite").get("skipped") == "2"


def test_macro_recall_threshold(sqlite_url, tmp_path, capsys) -> None:
    load_versions(sqlite_url, v2=(150, 50, 190, 10))  # recall 0.75 and 0.95: macro 0.85
    config = write_config(tmp_path, sqlite_url, "gate: {min_recall: 0.9}")
    code, markdown, root, _ = gate(capsys, config, tmp_path)
    assert code == 1 and cases(root) == {"min_recall": "fail"}
    assert "macro recall 0.8500 is below 0.9000" in row(markdown, "min_recall")
    config = write_config(tmp_path, sqlite_url, "gate: {min_recall: 0.85}")
    assert gate(capsys, config, tmp_path)[0] == 0


def test_drift_threshold_reads_the_published_psi(sqlite_url, tmp_path, capsys, monkeypatch) -> None:
    load_versions(sqlite_url, v2=(184, 16, 200, 0))
    config = write_config(tmp_path, sqlite_url, "gate: {max_drift_psi: 0.2}")
    code, markdown, root, _ = gate(capsys, config, tmp_path)
    assert code == 1 and cases(root) == {"max_drift_psi": "error"}  # no drift in this build: said plainly
    assert "no PSI drift scores for the candidate" in row(markdown, "max_drift_psi")

    def drift(version):  # what the drift module publishes (issue 3): model_drift_score{feature, method}
        family = GaugeMetricFamily("model_drift_score", "drift", labels=["feature", "method"])
        family.add_metric(["amount", "psi"], 0.31)
        family.add_metric(["country", "psi"], 0.05)
        family.add_metric(["amount", "jensen_shannon"], 0.9)
        return [family]

    monkeypatch.setattr(exposition, "VERSION_EXTENSIONS", [drift])
    code, markdown, root, _ = gate(capsys, config, tmp_path)
    assert code == 1 and cases(root) == {"max_drift_psi": "fail"}
    assert "largest PSI 0.3100 (feature amount) is above 0.2000 over 2 feature(s)" in row(markdown, "max_drift_psi")
    assert gate(capsys, write_config(tmp_path, sqlite_url, "gate: {max_drift_psi: 0.4}"), tmp_path)[0] == 0


@pytest.mark.parametrize("args, gate_text, code, message", [
    ([], "", 2, "job 'fraud-gate' has no gate: section; add thresholds to the job"),
    ([], "gate: {min_accuracy: 0.5}", 2, "the window 2026-01-09T00:00:00Z..2026-01-10T00:00:00Z has versions v1, v2; "
                                         "say which one with --candidate"),
    (["--candidate", "v9"], "gate: {min_accuracy: 0.5}", 1, "candidate version 'v9' has no predictions in the window"),
    (["--candidate", "v1", "--baseline", "v1"], "gate: {min_accuracy: 0.5}", 2, "candidate and baseline are the same"),
    ([], "gate: {min_accuracy: 1.5}", 2, "gate.min_accuracy: Input should be less than or equal to 1"),
])
def test_gate_usage_errors_are_one_line(sqlite_url, tmp_path, capsys, args, gate_text, code, message) -> None:
    load_versions(sqlite_url, v1=(10, 0, 10, 0), v2=(10, 0, 10, 0))
    config = write_config(tmp_path, sqlite_url, gate_text)
    assert cli.main(["gate", "fraud-gate", "--config", str(config), "--at", AT.isoformat(), *args]) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
