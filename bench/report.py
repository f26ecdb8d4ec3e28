"""The bench's numbers as one JSON document, and the short table a person reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bench.stats import Latency, Repeated, Throughput, ratio


@dataclass(frozen=True, slots=True)
class Setup:
    """What was measured, where: without it the numbers can't be compared across runs."""

    machine: dict[str, str | int]
    platform: str
    channel: str
    specs: tuple[str, ...]
    packages: int
    requests: int
    concurrency: int
    repeats: int
    warmup: int


@dataclass(frozen=True, slots=True)
class CacheHits:
    """The same answer asked of envd and read straight from its store."""

    envd: Latency
    envd_throughput: Throughput
    store: Latency
    store_throughput: Throughput


@dataclass(frozen=True, slots=True)
class Measurements:
    setup: Setup
    cache_hits: CacheHits
    envd_cold: Repeated
    direct_cold: Repeated
    envd_warm: Repeated
    direct_warm: Repeated


def to_document(m: Measurements) -> dict[str, Any]:
    """Every number, grouped by comparison, each with the ratio it exists to show."""
    hits = m.cache_hits
    return {
        "setup": asdict(m.setup),
        "cache_hit": {
            "envd": {
                "latency": asdict(hits.envd),
                "throughput": asdict(hits.envd_throughput),
            },
            "raw_store": {
                "latency": asdict(hits.store),
                "throughput": asdict(hits.store_throughput),
            },
            "ratio_envd_over_raw": {
                "p50": ratio(hits.envd.p50_ms, hits.store.p50_ms),
                "p99": ratio(hits.envd.p99_ms, hits.store.p99_ms),
                "throughput": ratio(
                    hits.envd_throughput.requests_per_s, hits.store_throughput.requests_per_s
                ),
            },
        },
        "cold_resolve": {
            "envd": asdict(m.envd_cold),
            "direct_cold": asdict(m.direct_cold),
            "ratio_envd_over_direct": ratio(m.envd_cold.median_ms, m.direct_cold.median_ms),
        },
        "warm_resolve": {
            "envd": asdict(m.envd_warm),
            "direct_cold": asdict(m.direct_cold),
            "ratio_envd_over_direct_cold": ratio(m.envd_warm.median_ms, m.direct_cold.median_ms),
            "direct_warm": asdict(m.direct_warm),
            "ratio_envd_over_direct_warm": ratio(m.envd_warm.median_ms, m.direct_warm.median_ms),
        },
    }


def render(doc: dict[str, Any]) -> str:
    """A table per comparison, from the document itself so text and JSON never disagree."""
    setup, hit = doc["setup"], doc["cache_hit"]
    cold, warm = doc["cold_resolve"], doc["warm_resolve"]
    envd, raw, hit_ratio = hit["envd"], hit["raw_store"], hit["ratio_envd_over_raw"]
    machine = ", ".join(f"{k}={v}" for k, v in setup["machine"].items())
    lines = [
        f"machine:  {machine}",
        f"spec:     {' '.join(setup['specs'])} on {setup['platform']} "
        f"({setup['packages']} packages solved)",
        f"channel:  {setup['channel']}",
        "",
        f"1. cache-hit Resolve: {setup['requests']} sequential requests after "
        f"{setup['warmup']} warm-up; throughput with {setup['concurrency']} client threads",
        f"   {'':<26}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>12}",
        _hit_row("envd (gRPC, unix socket)", envd),
        _hit_row("raw store read", raw),
        f"   {'ratio envd/raw':<26}{hit_ratio['p50']:>10.2f}{hit_ratio['p99']:>10.2f}"
        f"{hit_ratio['throughput']:>12.3f}",
        "",
        f"2. cold resolve, median of {setup['repeats']} (min-max) ms",
        _repeat_row("envd, fresh home", cold["envd"]),
        _repeat_row("py-rattler solve, cold", cold["direct_cold"]),
        f"   {'ratio envd/direct':<26}{cold['ratio_envd_over_direct']:>10.2f}",
        "",
        f"3. warm-agent resolve (force=True), median of {setup['repeats']} (min-max) ms",
        _repeat_row("envd, warm agent", warm["envd"]),
        _repeat_row("py-rattler solve, cold", warm["direct_cold"]),
        f"   {'ratio envd/direct cold':<26}{warm['ratio_envd_over_direct_cold']:>10.2f}",
        _repeat_row("py-rattler solve, warm", warm["direct_warm"]),
        f"   {'ratio envd/direct warm':<26}{warm['ratio_envd_over_direct_warm']:>10.2f}",
    ]
    return "\n".join(lines)


def _hit_row(label: str, row: dict[str, dict[str, float]]) -> str:
    latency, throughput = row["latency"], row["throughput"]
    return (
        f"   {label:<26}{latency['p50_ms']:>10.3f}{latency['p99_ms']:>10.3f}"
        f"{throughput['requests_per_s']:>12.1f}"
    )


def _repeat_row(label: str, row: dict[str, Any]) -> str:
    spread = f"({row['min_ms']:.1f}-{row['max_ms']:.1f})"
    return f"   {label:<26}{row['median_ms']:>10.1f}  {spread}"
