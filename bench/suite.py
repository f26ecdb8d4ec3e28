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
from bench.client_startup import measure_client_startup
from bench.direct_solve import DirectSolver
from bench.emulators import BACKENDS, Backend
from bench.report import ArchiveMeasurements, CacheHits, Measurements, Setup
from bench.reresolve_bench import measure_reresolve
from bench.resolve_bench import envd_cold, envd_warm, timed_resolve
from bench.stats import Latency, Repeated
from bench.synthetic_archives import build_archives, fixture_archive
from bench.transmute_bench import measure_transmute
from bench.upload_bench import measure_uploads, upload_sizes
from envd.agents.transmute import DEFAULT_LEVEL
from envd.client.api import EnvdClient
from envd.embedded import EmbeddedCoordinator
from envd.progress import Outcome
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec

Progress = Callable[[str], None]
MAX_WARMUP = 10
MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BenchOptions:
    requests: int = 300
    concurrency: int = 8
    repeats: int = 5
    platform: str = "linux-64"
    channel: ChannelMode = "http"
    dependency: str = "python=3.9"  # the demo's environment
    skip_archives: bool = False  # sections 4-6
    backends: tuple[Backend, ...] = BACKENDS
    upload_files: int = 8
    upload_size: int = 2 * MiB
    upload_large_size: int = 20 * MiB  # over envd's 8 MiB part size: S3 goes multipart; 0: none
    upload_rounds: int = 2
    archives: int = 6
    archive_size: int = 6 * MiB  # payload before bz2; the archive is about 40% of it
    transmute_level: int = DEFAULT_LEVEL
    transmute_workers: int | None = None  # None: one per CPU, as the agent defaults
    transmute_rounds: int = 3


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
        archives = None if options.skip_archives else _archives(options, scratch, progress)
        startup = measure_client_startup(
            source.url, options.dependency, options.platform, options.repeats,
            scratch / "client-startup", progress,
        )  # fmt: skip
        return Measurements(
            setup=_setup(options, source, spec, solver.package_count()),
            cache_hits=hits,
            envd_cold=Repeated.of(cold),
            direct_cold=Repeated.of(direct_cold),
            envd_warm=Repeated.of(warm),
            direct_warm=Repeated.of(direct_warm),
            archives=archives,
            client_startup=startup,
        )


def _archives(options: BenchOptions, scratch: Path, progress: Progress) -> ArchiveMeasurements:
    """Sections 4-6, each in its own scratch folder (emulators, archives, a coordinator home)."""
    sizes = upload_sizes(options.upload_files, options.upload_size, options.upload_large_size)
    uploads = measure_uploads(
        options.backends, sizes, options.upload_rounds, scratch / "uploads", progress
    )
    progress(f"transmute: building {options.archives} archives with py-rattler-build")
    archives = build_archives(options.archives, options.archive_size, scratch / "archives")
    fixture = fixture_archive()
    transmutes = measure_transmute(
        [*archives, *([fixture] if fixture is not None else [])],
        level=options.transmute_level,
        workers=options.transmute_workers or os.cpu_count() or 1,
        rounds=options.transmute_rounds,
        scratch=scratch / "transmute",
        progress=progress,
    )
    reresolve = measure_reresolve(options.channel, scratch / "reresolve", progress)
    return ArchiveMeasurements(uploads, transmutes, reresolve)


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
