"""Summaries of timed samples: percentiles for latency, medians for repeated resolves, MB/s."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

MS_PER_S = 1000.0


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks, so p99 of 300 samples isn't just the max."""
    if not samples:
        raise ValueError("failed to take a percentile: no samples")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class Latency:
    """Per-request latency of one sequential run, in milliseconds."""

    p50_ms: float
    p99_ms: float
    mean_ms: float
    requests: int

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        return cls(
            p50_ms=percentile(seconds, 50) * MS_PER_S,
            p99_ms=percentile(seconds, 99) * MS_PER_S,
            mean_ms=statistics.fmean(seconds) * MS_PER_S,
            requests=len(seconds),
        )


@dataclass(frozen=True, slots=True)
class Throughput:
    """Requests completed per second of wall time by `threads` concurrent callers."""

    requests_per_s: float
    requests: int
    threads: int


@dataclass(frozen=True, slots=True)
class Repeated:
    """A measurement taken a few times: the median is the number; the spread says how noisy."""

    median_ms: float
    min_ms: float
    max_ms: float
    samples_ms: tuple[float, ...]

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Repeated:
        ms = tuple(s * MS_PER_S for s in seconds)
        return cls(statistics.median(ms), min(ms), max(ms), ms)


def ratio(numerator: float, denominator: float) -> float:
    """`numerator / denominator`; a zero denominator (a clock too coarse) gives infinity."""
    return numerator / denominator if denominator > 0 else float("inf")


MB = 1_000_000  # rates are in MB/s, decimal, as disks and networks quote them


@dataclass(frozen=True, slots=True)
class Rate:
    """Bytes moved in `seconds` of wall time, as MB/s."""

    mb_per_s: float
    bytes: int
    seconds: float

    @classmethod
    def of(cls, size: int, seconds: float) -> Rate:
        return cls(ratio(size / MB, seconds), size, seconds)
