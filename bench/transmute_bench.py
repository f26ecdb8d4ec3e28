"""`.tar.bz2` → `.conda`: envd's worker pool across packages vs the library, one at a time."""

from __future__ import annotations

import concurrent.futures
import functools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from conda_package_streaming.transmute import transmute

from bench.stats import MB, ratio
from envd.agents.transmute import Transmuter

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class TransmuteSide:
    """Input MB/s (`.tar.bz2` bytes read per second of wall time): the median round's, and
    every round's; and the `.conda` bytes one round wrote."""

    mb_per_s: float
    samples_mb_per_s: tuple[float, ...]
    output_bytes: int


@dataclass(frozen=True, slots=True)
class Transmutes:
    archives: dict[str, int]  # filename → size
    input_bytes: int
    level: int
    workers: int
    rounds: int
    envd: TransmuteSide
    direct: TransmuteSide


def measure_transmute(
    archives: Sequence[Path],
    *,
    level: int,
    workers: int,
    rounds: int,
    scratch: Path,
    progress: Progress,
) -> Transmutes:
    """Rounds alternate which side goes first, so drift on a shared machine hits both alike.
    Each side warms up untimed first: envd's worker processes start (an agent keeps them for
    life) and the library's modules load."""
    transmuter = Transmuter(level=level, workers=workers)
    pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="bench-transmute")
    smallest = min(archives, key=lambda path: path.stat().st_size)
    try:
        progress(f"transmute: warm-up, starting envd's {workers} worker processes")
        _envd(transmuter, pool, [smallest] * workers, scratch / "warmup-envd")
        _direct([smallest], level, scratch / "warmup-direct")
        seconds: dict[str, list[float]] = {"envd": [], "direct": []}
        written = {"envd": 0, "direct": 0}
        for number in range(rounds):
            progress(f"transmute round {number + 1}/{rounds}: {len(archives)} archives, envd's "
                     f"{workers} workers and the library serially")  # fmt: skip
            out = scratch / f"round-{number}"
            sides: list[tuple[str, Callable[[], tuple[float, int]]]] = [
                ("direct", functools.partial(_direct, archives, level, out / "direct")),
                ("envd", functools.partial(_envd, transmuter, pool, archives, out / "envd")),
            ]
            for side, run in sides if number % 2 == 0 else reversed(sides):
                elapsed, written[side] = run()
                seconds[side].append(elapsed)
    finally:
        pool.shutdown(wait=True)
        transmuter.close()
    total = sum(path.stat().st_size for path in archives)
    sizes = {path.name: path.stat().st_size for path in archives}
    envd, direct = (_side(total, seconds[s], written[s]) for s in ("envd", "direct"))
    return Transmutes(sizes, total, level, workers, rounds, envd, direct)


def _envd(
    transmuter: Transmuter,
    pool: concurrent.futures.ThreadPoolExecutor,
    archives: Sequence[Path],
    out: Path,
) -> tuple[float, int]:
    """As the agent does: a thread per package in flight, each calling `.transmute(src,
    out_dir)`; the Transmuter runs at most `workers` at once, each in its worker process.

    Includes what the agent always does and the library does not: verifying the `.conda`
    holds the same files as the `.tar.bz2` (both read again, every file hashed)."""
    folders = [_folder(out / str(index)) for index in range(len(archives))]
    start = time.perf_counter()
    made = list(pool.map(transmuter.transmute, archives, folders))
    return time.perf_counter() - start, sum(m.size for m in made)


def _direct(archives: Sequence[Path], level: int, out: Path) -> tuple[float, int]:
    """`conda_package_streaming.transmute.transmute` at the same zstd level and one zstd
    thread, as envd's worker calls it, but one archive after another and unverified."""
    folders = [_folder(out / str(index)) for index in range(len(archives))]
    start = time.perf_counter()
    made = [
        transmute(str(source), str(folder), compression_level=level, compression_threads=1)
        for source, folder in zip(archives, folders, strict=True)
    ]
    elapsed = time.perf_counter() - start
    return elapsed, sum(Path(path).stat().st_size for path in made)


def _side(total: int, seconds: Sequence[float], written: int) -> TransmuteSide:
    rates = tuple(ratio(total / MB, s) for s in seconds)
    return TransmuteSide(statistics.median(rates), rates, written)


def _folder(path: Path) -> Path:
    path.mkdir(parents=True)
    return path
