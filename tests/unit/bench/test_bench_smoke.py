"""The bench runs end to end with tiny numbers and reports every key; timings are not judged."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

import pytest

from bench.__main__ import parse_options
from bench.emulators import scoped_env
from bench.report import Measurements, render, to_document
from bench.stats import Latency, Rate, Repeated, percentile
from bench.suite import BenchOptions, run_bench

KiB = 1024
TINY = BenchOptions(
    requests=5, concurrency=2, repeats=1,
    upload_files=2, upload_size=64 * KiB, upload_large_size=0, upload_rounds=1,
    archives=2, archive_size=64 * KiB, transmute_workers=2, transmute_rounds=1,
)  # fmt: skip

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
    "upload": {"note", "file_sizes", "rounds", "backends", "skipped"},
    "transmute": {
        "archives", "input_bytes", "level", "workers", "rounds", "envd", "direct",
        "ratio_envd_over_direct",
    },
    "reresolve": {"first", "second", "ratio_uploaded_over_environment"},
    "client_startup": {
        "python", "version", "cache_hit_resolve", "ratio_version_over_python",
        "ratio_cache_hit_over_python", "targets_ms",
    },
}  # fmt: skip
ARCHIVE_SECTIONS = {"upload", "transmute", "reresolve"}
LATENCY_KEYS = {"p50_ms", "p99_ms", "mean_ms", "requests"}
THROUGHPUT_KEYS = {"requests_per_s", "requests", "threads"}
REPEATED_KEYS = {"median_ms", "min_ms", "max_ms", "samples_ms"}
RATE_KEYS = {"mb_per_s", "bytes", "seconds"}
UPLOAD_KEYS = {"emulator", "envd", "raw", "raw_call", "ratio_envd_over_raw"}
TRANSMUTE_SIDE_KEYS = {"mb_per_s", "samples_mb_per_s", "output_bytes"}


@pytest.fixture(scope="module")
def measurements() -> Measurements:
    progress: list[str] = []
    measured = run_bench(TINY, progress.append)
    assert progress, "the bench reports progress"
    return measured


@pytest.fixture(scope="module")
def document(measurements: Measurements) -> dict[str, Any]:
    return to_document(measurements)


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
def test_upload_section_runs_at_least_s3(document: dict[str, Any]) -> None:
    upload = document["upload"]
    assert upload["file_sizes"] == [64 * KiB, 64 * KiB]
    assert "s3" in upload["backends"]  # moto comes with the test extra: always runs
    assert set(upload["backends"]) | set(upload["skipped"]) == {"s3", "gcs", "azure"}
    assert set(upload["backends"]).isdisjoint(upload["skipped"])
    for row in upload["backends"].values():
        assert set(row) == UPLOAD_KEYS
        assert set(row["envd"]) == set(row["raw"]) == RATE_KEYS
        assert row["envd"]["bytes"] == row["raw"]["bytes"] == 2 * 64 * KiB


@pytest.mark.timeout(60)
def test_transmute_section_counts_bytes(document: dict[str, Any]) -> None:
    transmute = document["transmute"]
    assert (transmute["level"], transmute["workers"], transmute["rounds"]) == (10, 2, 1)
    synthetic = [name for name in transmute["archives"] if name.startswith("envd-bench-")]
    assert len(synthetic) == TINY.archives
    assert transmute["input_bytes"] == sum(transmute["archives"].values())
    for side in ("envd", "direct"):
        assert set(transmute[side]) == TRANSMUTE_SIDE_KEYS
        assert len(transmute[side]["samples_mb_per_s"]) == 1


@pytest.mark.timeout(60)
def test_reresolve_uploads_only_the_new_archive(document: dict[str, Any]) -> None:
    again = document["reresolve"]
    assert set(again["first"]) == {"specs", "stored_bytes", "stored_archives"}
    assert set(again["second"]) == {
        "specs", "environment_bytes", "environment_archives", "uploaded_bytes", "uploaded",
    }  # fmt: skip
    assert again["first"]["specs"] == ["cph_test_data"]
    assert again["first"]["stored_archives"] == 2  # the .tar.bz2 and the .conda made from it
    assert again["second"]["environment_archives"] == 3
    assert again["second"]["uploaded"] == ["envd-demo-hello-1.0-0.conda"]
    assert again["second"]["uploaded_bytes"] < again["second"]["environment_bytes"]


@pytest.mark.timeout(60)
def test_every_number_is_positive_and_finite(document: dict[str, Any]) -> None:
    numbers = _numbers(document)
    assert len(numbers) > 60
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
    headings = ["1. cache-hit Resolve", "2. cold resolve", "3. warm-agent resolve",
                "4. archive upload", "5. transmute", "6. re-resolve",
                "7. client startup"]  # fmt: skip
    for heading in headings:
        assert heading in table
    assert "ratio envd/raw" in table
    assert "ratio envd/direct" in table
    assert "s3 (moto)" in table
    assert "emulators on loopback" in table
    assert "ratio uploaded/environment" in table


@pytest.mark.timeout(60)
def test_skipped_archives_keep_the_first_sections(measurements: Measurements) -> None:
    doc = to_document(dataclasses.replace(measurements, archives=None))
    assert set(doc) == set(EXPECTED_KEYS) - ARCHIVE_SECTIONS
    table = render(doc)
    assert "3. warm-agent resolve" in table
    assert "\n4-6. archive sections skipped (--skip-archives)\n" in table
    assert "envd-client --version" in table


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
def test_archive_options_parse() -> None:
    options, _ = parse_options(
        ["--skip-archives", "--backends", "azure,s3", "--upload-files", "3", "--upload-size",
         "64KiB", "--upload-large-size", "0", "--upload-rounds", "4", "--archives", "5",
         "--archive-size", "2MiB", "--transmute-level", "3", "--transmute-workers", "6",
         "--transmute-rounds", "7"]
    )  # fmt: skip
    assert options == BenchOptions(
        skip_archives=True, backends=("s3", "azure"), upload_files=3, upload_size=64 * KiB,
        upload_large_size=0, upload_rounds=4, archives=5, archive_size=2 * 1024 * KiB,
        transmute_level=3, transmute_workers=6, transmute_rounds=7,
    )  # fmt: skip
    assert parse_options(["--upload-size", "65536"])[0].upload_size == 64 * KiB
    assert parse_options(["--upload-size", "1g"])[0].upload_size == 1024**3


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "argv",
    [["--backends", "s3,minio"], ["--upload-size", "2 TB"], ["--transmute-level", "23"],
     ["--archives", "0"]],
)  # fmt: skip
def test_archive_options_refuse_bad_values(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_options(argv)


@pytest.mark.timeout(10)
def test_scoped_env_restores_every_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVD_BENCH_KEPT", "before")
    monkeypatch.delenv("ENVD_BENCH_NEW", raising=False)
    with scoped_env({"ENVD_BENCH_KEPT": "during", "ENVD_BENCH_NEW": "during"}):
        assert os.environ["ENVD_BENCH_KEPT"] == os.environ["ENVD_BENCH_NEW"] == "during"
    assert os.environ["ENVD_BENCH_KEPT"] == "before"
    assert "ENVD_BENCH_NEW" not in os.environ


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
    assert Rate.of(3_000_000, 2.0) == Rate(1.5, 3_000_000, 2.0)
