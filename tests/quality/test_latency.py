"""The latency histogram: bucket counts from SQL equal numpy's on the same rows, on SQLite and
PostgreSQL; NULLs are counted apart; bad latencies are reported; the pushed family is a real
Prometheus histogram."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from evaljobs import cli, exposition
from evaljobs.config import DEFAULT_LATENCY_BUCKETS, parse_config
from evaljobs.errors import ConfigError
from evaljobs.ops.runner import evaluate_job
from evaljobs.db.engine import connect
from evaljobs.db.source import JobSource
from evaljobs.windows import plan_window

from tests.conftest import examples, scrape
from tests.dbdata import Label, Prediction, load
from tests.db.test_pipeline_db import AT, evaluate, load_url, make_job

WINDOW = plan_window(AT, timedelta(days=1), timedelta(days=1))


def numpy_histogram(latencies: list[float | None], bounds: tuple[float, ...]) -> dict:
    """The reference: cumulative counts as Prometheus defines them (le is inclusive)."""
    measured = np.array([x for x in latencies if x is not None], dtype=float)
    return {
        "cumulative": tuple(int(np.count_nonzero(measured <= le)) for le in bounds),
        "count": int(measured.size),
        "sum": float(np.sum(measured)),
        "missing": sum(1 for x in latencies if x is None),
    }


def rows_for(versions: dict[str, list[float | None]]) -> list[Prediction]:
    rows = []
    for version, latencies in versions.items():
        for i, latency in enumerate(latencies):
            at = WINDOW.start + timedelta(minutes=i % (24 * 60))
            rows.append(Prediction(f"{version}-{i}", version, at, "1", 0.5, latency))
    return rows


bucket_sets = st.lists(st.sampled_from([0.001, 0.01, 0.05, 0.1, 0.25, 0.3, 1.0, 2.5, 10.0]),
                       min_size=1, max_size=6, unique=True).map(lambda b: tuple(sorted(b)))
latency_values = st.one_of(
    st.none(),
    st.sampled_from([0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.3, 1.0, 2.5, 10.0]),  # exactly on bounds
    st.floats(0, 30, allow_nan=False, allow_infinity=False),
)


def test_bucket_counts_sum_and_count_equal_numpy(engine_url: str) -> None:
    """On every engine of the matrix."""
    engine = connect(engine_url, create=True)

    @settings(max_examples=examples(engine_url, 20), deadline=None, suppress_health_check=list(HealthCheck))
    @given(buckets=bucket_sets,
           versions=st.dictionaries(st.sampled_from(["v1", "v2", "v 3/beta"]),
                                    st.lists(latency_values, min_size=1, max_size=40), min_size=1, max_size=3))
    def check(buckets, versions):
        load(engine, rows_for(versions), [])
        job = make_job(latency_buckets=list(buckets))
        result = evaluate_job(JobSource(engine, job), plan_window(AT, job.window, job.label_delay))
        assert not result.problems
        got = {v.model_version: v.latency for v in result.versions}
        assert set(got) == set(versions)
        for version, latencies in versions.items():
            want, histogram = numpy_histogram(latencies, buckets), got[version]
            assert histogram.bounds == buckets
            assert histogram.cumulative_counts == want["cumulative"]
            assert (histogram.count, histogram.missing) == (want["count"], want["missing"])
            assert histogram.sum_seconds == pytest.approx(want["sum"], rel=1e-12, abs=1e-12)

    try:
        check()
    finally:
        engine.dispose()


def test_demo_like_latencies_with_default_buckets(engine_url: str) -> None:
    """A larger sample with the default buckets; mean = sum / count; predictions outside the window excluded."""
    rng = np.random.default_rng(5)
    latencies = [round(float(x), 6) for x in rng.lognormal(np.log(0.18), 0.6, size=600)]
    latencies[::50] = [None] * len(latencies[::50])
    rows = rows_for({"2024.1": latencies})
    rows.append(Prediction("outside", "2024.1", WINDOW.end, "1", 0.5, 99.0))
    load_url(engine_url, rows, [])
    [v] = evaluate(engine_url, make_job()).versions
    want = numpy_histogram(latencies, DEFAULT_LATENCY_BUCKETS)
    assert v.latency.cumulative_counts == want["cumulative"]
    assert (v.latency.count, v.latency.missing) == (want["count"], want["missing"]) == (588, 12)
    assert v.latency.mean_seconds == pytest.approx(np.mean([x for x in latencies if x is not None]), rel=1e-12)
    assert v.window_predictions == v.latency.count + v.latency.missing


def test_all_latencies_null_gives_an_empty_histogram(db_url: str) -> None:
    load_url(db_url, rows_for({"v1": [None, None]}), [])
    [v] = evaluate(db_url, make_job()).versions
    assert (v.latency.count, v.latency.missing, v.latency.sum_seconds, v.latency.mean_seconds) == (0, 2, 0.0, None)
    assert set(v.latency.cumulative_counts) == {0}


def test_no_latency_column_means_no_histogram(db_url: str) -> None:
    load_url(db_url, rows_for({"v1": [0.1]}), [])
    [v] = evaluate(db_url, make_job(columns={"latency_seconds": None})).versions
    assert v.latency is None
    names = {f.name for f in exposition.version_families(v)}
    assert "model_inference_latency_seconds" not in names and "model_accuracy_ratio" not in names


def test_negative_latency_is_reported_and_not_published(db_url: str) -> None:
    load_url(db_url, rows_for({"v1": [0.1, -0.2], "v2": [0.3]}), [])
    result = evaluate(db_url, make_job())
    by_version = {v.model_version: v for v in result.versions}
    assert by_version["v1"].latency is None and by_version["v2"].latency.count == 1
    [problem] = result.problems
    assert "version 'v1'" in str(problem) and "from -0.2 to 0.1" in str(problem) and "\n" not in str(problem)


def test_nan_latency_on_postgresql_is_reported(postgres_url: str) -> None:
    """PostgreSQL stores NaN and Infinity; a sum over them would be a silently wrong number."""
    load_url(postgres_url, rows_for({"v1": [0.1, float("nan")], "v2": [float("inf")], "v3": [0.2]}), [])
    result = evaluate(postgres_url, make_job())
    assert {v.model_version for v in result.versions if v.latency is None} == {"v1", "v2"}
    assert len(result.problems) == 2


def test_exposition_is_a_prometheus_histogram(sqlite_url: str) -> None:
    load_url(sqlite_url, rows_for({"v1": [0.05, 0.1, 0.7, 3.0, None]}), [])
    [v] = evaluate(sqlite_url, make_job(latency_buckets=[0.1, 1])).versions
    text = generate_latest(exposition.registry_of(exposition.version_families(v))).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    histogram = families["model_inference_latency_seconds"]
    assert histogram.type == "histogram"
    samples = {(s.name, s.labels.get("le")): s.value for s in histogram.samples}
    assert samples == {
        ("model_inference_latency_seconds_bucket", "0.1"): 2.0,
        ("model_inference_latency_seconds_bucket", "1.0"): 3.0,
        ("model_inference_latency_seconds_bucket", "+Inf"): 4.0,
        ("model_inference_latency_seconds_count", None): 4.0,
        ("model_inference_latency_seconds_sum", None): pytest.approx(3.85),
    }
    assert families["model_inference_latency_missing_predictions"].samples[0].value == 1.0
    assert set(exposition.FAMILIES) >= {"model_inference_latency_seconds", "model_inference_latency_missing_predictions"}


def test_pushed_histogram_and_cli_outputs(sqlite_url, pushgateway, tmp_path, capsys) -> None:
    load_url(sqlite_url, rows_for({"v1": [0.02, 0.04, 0.3, None]}), [Label("v1-0", "1", WINDOW.end)])
    config = tmp_path / "schedules.yaml"
    config.write_text(
        f"database: {sqlite_url}\npushgateway: {pushgateway.url}\njobs:\n"
        "  - {name: lat, model: m, task: binary, positive_label: 1, window: 1d, label_delay: 1d,\n"
        "     schedule: '0 0 * * *', latency_buckets: [0.05, 0.5]}\n"
    )
    assert cli.main(["run", "lat", "--config", str(config), "--at", AT.isoformat()]) == 0
    table = capsys.readouterr().out
    assert "avg latency" in table and "120.0 ms" in table
    [histogram] = [f for f in scrape(f"{pushgateway.url}/metrics") if f.name == "model_inference_latency_seconds"]
    assert histogram.type == "histogram"
    got = {(s.name.rsplit("_", 1)[1], s.labels.get("le")): s.value for s in histogram.samples
           if s.labels.get("model_version") == "v1"}
    assert got == {("bucket", "0.05"): 2, ("bucket", "0.5"): 3, ("bucket", "+Inf"): 3,
                   ("count", None): 3, ("sum", None): pytest.approx(0.36)}

    assert cli.main(["run", "lat", "--config", str(config), "--at", AT.isoformat(), "--dry-run", "--output", "json"]) == 0
    [version] = json.loads(capsys.readouterr().out)["jobs"][0]["versions"]
    assert version["latency"]["mean_seconds"] == pytest.approx(0.12)
    assert version["latency"]["buckets"] == [{"le": 0.05, "count": 2}, {"le": 0.5, "count": 3}, {"le": "+Inf", "count": 3}]
    assert version["latency"]["missing"] == 1


JOB = "jobs:\n  - {name: j, model: m, task: multiclass, window: 1d, schedule: '0 0 * * *'%s}\n"


def test_bucket_config_defaults_and_validation() -> None:
    assert parse_config(JOB % "").jobs[0].latency_buckets == DEFAULT_LATENCY_BUCKETS
    assert 1.0 in DEFAULT_LATENCY_BUCKETS  # the latency alert's threshold is an exact bucket bound
    assert parse_config(JOB % ", latency_buckets: [0.1, 1, .inf]").jobs[0].latency_buckets == (0.1, 1.0)
    for bad, message in [
        ("[1, 0.5]", "strictly increasing"),
        ("[0.1, 0.1]", "strictly increasing"),
        ("[0, 1]", "0 is not a positive number of seconds"),
        ("[-1]", "-1.0 is not a positive number of seconds"),
        ("[]", "at least one bound"),
        ("0.5", "must be a list of seconds"),
        (str(list(range(1, 60))), "at most 50"),
        ("[fast]", "latency_buckets"),
    ]:
        with pytest.raises(ConfigError) as info:
            parse_config(JOB % f", latency_buckets: {bad}", source="s.yaml")
        text = str(info.value)
        assert message in text and "jobs[0] (j).latency_buckets" in text and "\n" not in text, text
    assert not math.isinf(max(parse_config(JOB % "").jobs[0].latency_buckets))


def test_new_families_are_in_the_readme_metrics_table() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme[readme.index("## Metrics"):readme.index("## How it computes")]
    for name in ["model_inference_latency_seconds", "model_inference_latency_missing_predictions",
                 "evaljobs_schedule_interval_seconds"]:
        assert f"`{name}" in table, name
