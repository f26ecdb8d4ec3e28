"""One bench run: the channel, the scratch homes, and each measurement in a fixed order."""

from __future__ import annotations

import os
import platform as host
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version as dist_version
from pathlib import Path

import envd
from bench.cache_hit import Caller, EnvdCacheHit, RawStoreRead, latency, throughput
from bench.channel import ChannelMode, ChannelSource, open_channel
from bench.direct_solve import DirectSolver
from bench.report import CacheHits, Measurements, Setup
from bench.resolve_bench import envd_cold, envd_warm, timed_resolve
from bench.stats import Latency, Repeated
from envd.client.api import EnvdClient
from envd.embedded import EmbeddedCoordinator
from envd.progress import Outcome
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec

Progress = Callable[[str], None]
MAX_WARMUP = 10


@dataclass(frozen=True, slots=True)
class BenchOptions:
    requests: int = 300
    concurrency: int = 8
    repeats: int = 5
    platform: str = "linux-64"
    channel: ChannelMode = "http"
    dependency: str = "python=3.9"  # the demo's environment


def run_bench(options: BenchOptions, progress: Progress) -> Measurements:
    """Cold samples alternate envd and py-rattler so drift on the machine hits both alike."""
    with (
        open_channel(options.channel) as source,
        tempfile.TemporaryDirectory(prefix="envd-bench-") as tmp,
    ):
        scratch = Path(tmp)
        spec = normalize_spec(
            RawSpec(conda=[RawDependency(options.dependency)], channels=[source.url])
        )
        solver = DirectSolver(spec, options.platform)
        direct_cold: list[float] = []
        cold: list[float] = []
        for index in range(options.repeats):
            progress(f"cold resolve {index + 1}/{options.repeats}: py-rattler, then envd")
            direct_cold += solver.cold(1)
            cold += envd_cold(spec, options.platform, 1, scratch)
        progress(f"warm resolve: py-rattler x{options.repeats}")
        direct_warm = solver.warm(options.repeats)
        warm, hits = _with_warm_agent(options, spec, scratch / "warm", progress)
        return Measurements(
            setup=_setup(options, source, spec, solver.package_count()),
            cache_hits=hits,
            envd_cold=Repeated.of(cold),
            direct_cold=Repeated.of(direct_cold),
            envd_warm=Repeated.of(warm),
            direct_warm=Repeated.of(direct_warm),
        )


def _with_warm_agent(
    options: BenchOptions, spec: Spec, home: Path, progress: Progress
) -> tuple[list[float], CacheHits]:
    """Everything needing one coordinator whose agent has resolved once and whose store holds
    the answer: warm resolves, then cache hits."""
    platform, requests, threads = options.platform, options.requests, options.concurrency
    with EmbeddedCoordinator(home) as target:
        with EnvdClient(target) as client:
            client.info()
            progress("warm resolve: priming the agent")
            _, req_id = timed_resolve(client, spec, platform, force=False, expect=Outcome.RESOLVED)
            progress(f"warm resolve: envd force=True x{options.repeats}")
            warm = envd_warm(client, spec, platform, options.repeats)
        store_url = str(home / "store")

        def envd_caller() -> Caller:
            return EnvdCacheHit(target, spec, platform)

        def store_caller() -> Caller:
            return RawStoreRead(store_url, req_id, platform)

        progress(f"cache hits: envd, {requests} sequential then {threads} threads")
        envd_hit = _latency(envd_caller, requests)
        envd_rate = throughput(envd_caller, requests, threads)
        progress(f"cache hits: raw store, {requests} sequential then {threads} threads")
        store_read = _latency(store_caller, requests)
        store_rate = throughput(store_caller, requests, threads)
    return warm, CacheHits(envd_hit, envd_rate, store_read, store_rate)


def _latency(make_caller: Callable[[], Caller], requests: int) -> Latency:
    caller = make_caller()
    try:
        return latency(caller, requests, warmup_count(requests))
    finally:
        caller.close()


def warmup_count(requests: int) -> int:
    """Enough untimed requests to connect and fill caches, never more than are measured."""
    return min(MAX_WARMUP, requests)


def _setup(options: BenchOptions, source: ChannelSource, spec: Spec, packages: int) -> Setup:
    machine: dict[str, str | int] = {
        "os": host.platform(terse=True),
        "cpu": host.machine(),
        "cpus": os.cpu_count() or 0,
        "python": host.python_version(),
        "envd": envd.__version__,
        "py-rattler": dist_version("py-rattler"),
    }
    return Setup(
        machine=machine,
        platform=options.platform,
        channel=source.label,
        specs=tuple(spec.conda_specs_for(options.platform)),
        packages=packages,
        requests=options.requests,
        concurrency=options.concurrency,
        repeats=options.repeats,
        warmup=warmup_count(options.requests),
    )


def stderr_progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)
