"""The bench runs end to end with tiny numbers and reports every key; timings are not judged."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from bench.__main__ import parse_options
from bench.report import render, to_document
from bench.stats import Latency, Repeated, percentile
from bench.suite import BenchOptions, run_bench

TINY = BenchOptions(requests=5, concurrency=2, repeats=1)

EXPECTED_KEYS = {
    "setup": {
        "machine", "platform", "channel", "specs", "packages", "requests", "concurrency",
        "repeats", "warmup",
    },
    "cache_hit": {"envd", "raw_store", "ratio_envd_over_raw"},
    "cold_resolve": {"envd", "direct_cold", "ratio_envd_over_direct"},
    "warm_resolve": {
        "envd", "direct_cold", "ratio_envd_over_direct_cold", "direct_warm",
        "ratio_envd_over_direct_warm",
    },
}  # fmt: skip
LATENCY_KEYS = {"p50_ms", "p99_ms", "mean_ms", "requests"}
THROUGHPUT_KEYS = {"requests_per_s", "requests", "threads"}
REPEATED_KEYS = {"median_ms", "min_ms", "max_ms", "samples_ms"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    progress: list[str] = []
    doc = to_document(run_bench(TINY, progress.append))
    assert progress, "the bench reports progress"
    return doc


def _numbers(value: Any, path: str = "") -> list[tuple[str, float]]:
    if isinstance(value, dict):
        return [n for key, item in value.items() for n in _numbers(item, f"{path}.{key}")]
    if isinstance(value, list | tuple):
        return [n for i, item in enumerate(value) for n in _numbers(item, f"{path}[{i}]")]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [(path, float(value))]
    return []


@pytest.mark.timeout(60)
def test_report_has_every_key(document: dict[str, Any]) -> None:
    assert {k: set(v) for k, v in document.items()} == EXPECTED_KEYS
    hit = document["cache_hit"]
    for side in ("envd", "raw_store"):
        assert set(hit[side]) == {"latency", "throughput"}
        assert set(hit[side]["latency"]) == LATENCY_KEYS
        assert set(hit[side]["throughput"]) == THROUGHPUT_KEYS
    assert set(hit["ratio_envd_over_raw"]) == {"p50", "p99", "throughput"}
    for section, key in [
        ("cold_resolve", "envd"),
        ("cold_resolve", "direct_cold"),
        ("warm_resolve", "envd"),
        ("warm_resolve", "direct_warm"),
    ]:
        assert set(document[section][key]) == REPEATED_KEYS
        assert len(document[section][key]["samples_ms"]) == TINY.repeats


@pytest.mark.timeout(60)
def test_every_number_is_positive_and_finite(document: dict[str, Any]) -> None:
    numbers = _numbers(document)
    assert len(numbers) > 30
    bad = [(path, value) for path, value in numbers if not (value > 0 and math.isfinite(value))]
    assert bad == []


@pytest.mark.timeout(60)
def test_setup_records_what_was_measured(document: dict[str, Any]) -> None:
    setup = document["setup"]
    assert (setup["platform"], setup["requests"], setup["concurrency"]) == ("linux-64", 5, 2)
    assert setup["specs"] == ("python 3.9.*",)
    assert "via loopback HTTP (http://127.0.0.1:" in setup["channel"]
    assert document["cache_hit"]["envd"]["throughput"]["requests"] == 5


@pytest.mark.timeout(60)
def test_table_and_json_come_from_the_same_document(document: dict[str, Any]) -> None:
    json.dumps(document)  # every value serializes
    table = render(document)
    for heading in ("1. cache-hit Resolve", "2. cold resolve", "3. warm-agent resolve"):
        assert heading in table
    assert "ratio envd/raw" in table
    assert "ratio envd/direct" in table


@pytest.mark.timeout(10)
def test_options_parse_with_defaults_and_overrides() -> None:
    assert parse_options([]) == (BenchOptions(), False)
    options, as_json = parse_options(
        ["--requests", "7", "--concurrency", "3", "--repeats", "2", "--platform", "osx-arm64",
         "--channel", "folder", "--json"]
    )  # fmt: skip
    assert options == BenchOptions(
        requests=7, concurrency=3, repeats=2, platform="osx-arm64", channel="folder"
    )
    assert as_json


@pytest.mark.timeout(10)
def test_options_refuse_zero_requests() -> None:
    with pytest.raises(SystemExit):
        parse_options(["--requests", "0"])


@pytest.mark.timeout(10)
def test_summaries() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([1.0, 2.0], 99) == pytest.approx(1.99)
    assert percentile([4.0], 99) == 4.0
    latency = Latency.of([0.001, 0.003])
    assert (latency.p50_ms, latency.p99_ms, latency.mean_ms) == pytest.approx((2.0, 2.98, 2.0))
    assert latency.requests == 2
    assert Repeated.of([0.002, 0.001, 0.003]).median_ms == 2.0
