"""What the daemon's and the agent's metrics share: the `--metrics-listen` endpoint, buckets,
build info, label children looked up once, and lock-free metrics for the event loop's hot path."""

from __future__ import annotations

import argparse
import ipaddress
import itertools
import logging
import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from threading import Thread
from typing import Generic, Protocol, TypeVar, cast
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Gauge, disable_created_metrics, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

import envd
from envd.errors import ConfigError

log = logging.getLogger("envd.metrics")
# a cache hit takes about a millisecond, a cold solve seconds, a large build an hour
SECONDS_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip
# archives: fetches and uploads of one file, up to a 1 GB package on a slow link
TRANSFER_BUCKETS = (
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip


def listen_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:9464` for IPv6; port 0 picks a free one) as an argparse type."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    try:
        number = int(port)
        if host and host != "localhost":
            ipaddress.ip_address(host)
    except ValueError:
        number = -1
    if not sep or not host or not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(
            f"`{text}` is not HOST:PORT with an IP address (e.g. `127.0.0.1:9464`, `[::]:9464`)"
        )
    return host, number


def add_metrics_argument(parser: argparse.ArgumentParser) -> None:
    """`--metrics-listen HOST:PORT`, the same on the daemon and the agent."""
    parser.add_argument(
        "--metrics-listen",
        type=listen_address,
        metavar="HOST:PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics (default: off)",
    )


@dataclass(slots=True)
class MetricsEndpoint:
    """`/metrics` served from a thread of its own, so a scrape never waits for the event loop
    (except for the values a collector reads from it)."""

    host: str
    port: int
    server: WSGIServer
    thread: Thread

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, listen: tuple[str, int]) -> MetricsEndpoint:
    host, port = listen
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as err:
        raise ConfigError(
            f"failed to serve metrics on `{host}:{port}`: {err.strerror or err}",
            hint="pick a free port (or another address) for `--metrics-listen`",
        ) from err
    endpoint = MetricsEndpoint(host, server.server_port, server, thread)
    log.info("metrics on %s", endpoint.url)
    return endpoint


def new_registry() -> CollectorRegistry:
    """A registry of one daemon's or agent's own (never the global one: tests and the embedded
    default run several in one process). No `*_created` series: Prometheus has no use for
    them, and they double what each scrape stores."""
    # process-wide in prometheus-client; what every envd role wants
    disable_created_metrics()  # type: ignore[no-untyped-call]
    return CollectorRegistry(auto_describe=True)


def register_build_info(registry: CollectorRegistry, role: str) -> None:
    """`envd_build_info{role, version} 1`: which release each process runs."""
    info = Gauge("envd_build_info", "The envd release this process runs (always 1).",
                 ["role", "version"], registry=registry)  # fmt: skip
    info.labels(role, envd.__version__).set(1)


class _Labelled(Protocol):
    def labels(self, *values: str) -> object: ...


M = TypeVar("M")


class Children(Generic[M]):
    """A metric's children by label values, each looked up in prometheus-client once (its
    `labels()` takes a lock and builds keys on every call: too slow for the cache-hit path)."""

    def __init__(self, metric: _Labelled) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        found = self._children.get(values)
        if found is not None:
            return found
        child = cast(M, self._metric.labels(*values))
        self._children[values] = child
        return child


Labels = tuple[str, ...]


@dataclass(slots=True)
class LoopCounter:
    """A counter by label values that only one thread (the event loop) increments: no lock,
    one dict update. A scrape from another thread copies the dict whole (one C call)."""

    name: str
    documentation: str
    labels: Sequence[str]
    values: dict[Labels, float] = field(default_factory=dict)

    def inc(self, key: Labels, amount: float = 1.0) -> None:
        self.values[key] = self.values.get(key, 0.0) + amount

    def family(self) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for key, value in sorted(dict(self.values).items()):
            family.add_metric(key, value)
        return family


@dataclass(slots=True)
class _Series:
    counts: list[int]  # per bucket, not cumulative; the last one is +Inf
    sum: float = 0.0


@dataclass(slots=True)
class LoopHistogram:
    """A histogram by label values that only one thread (the event loop) observes: no lock, a
    bisect and two additions. Buckets are summed up at scrape time, so each scrape's `_count`
    equals its `+Inf` bucket (its `_sum` may miss an observation made while it copied)."""

    name: str
    documentation: str
    labels: Sequence[str]
    buckets: Sequence[float]
    series: dict[Labels, _Series] = field(default_factory=dict)

    def observe(self, key: Labels, value: float) -> None:
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = _Series([0] * (len(self.buckets) + 1))
        series.counts[bisect_left(self.buckets, value)] += 1
        series.sum += value

    def family(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        bounds = [_le(b) for b in (*self.buckets, math.inf)]
        for key, series in sorted(list(self.series.items())):
            total = series.sum
            cumulative = itertools.accumulate(list(series.counts))
            family.add_metric(list(key), list(zip(bounds, cumulative, strict=True)), total)
        return family


def _le(bound: float) -> str:
    """A bucket bound as prometheus-client writes it (`0.001`, `1.0`, `+Inf`)."""
    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return text


class LoopMetrics(Collector):
    """The families of `LoopCounter`s and `LoopHistogram`s, for a registry (which, describing
    them by a first collect, lists them from the first scrape)."""

    def __init__(self, metrics: Iterable[LoopCounter | LoopHistogram]) -> None:
        self.metrics = list(metrics)

    def collect(self) -> Iterable[Metric]:
        return [m.family() for m in self.metrics]
