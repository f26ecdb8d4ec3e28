"""What metrics cost on the hot path: cache-hit `Resolve` throughput of one `envd-daemon` with
metrics off next to one with `--metrics-listen` (and a scrape each second, as a busy Prometheus
would), over the same store.

`python -m bench.metrics_cost [--streams 16] [--seconds 3] [--rounds 8] [--json]`. Both daemons
run as their own process; one load generator (this process) drives each in turn, off then on,
`rounds` times, so drift hits both alike. Two ratios: requests per second of wall time (what a
client sees; on a shared machine other work moves it by ±20% from round to round), and
requests per second of the daemon's own CPU time (its capacity; Linux `/proc`), which other
processes barely move."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import envd
from bench.channel import open_channel
from bench.grpc_peer import _load, cache_hit_request, start_daemon
from bench.stats import ratio
from envd.wire import PROTOCOL_METADATA_KEY, VERSION_METADATA_KEY

GOAL = 0.95


@dataclass(frozen=True, slots=True)
class Side:
    requests_per_s: float  # median of the rounds
    samples: tuple[float, ...]
    requests_per_cpu_s: float | None  # all rounds: requests / the daemon's CPU seconds


@dataclass(frozen=True, slots=True)
class MetricsCost:
    streams: int
    seconds: float
    rounds: int
    packages: int
    off: Side
    on: Side
    ratio_on_over_off: float  # wall-time throughput; goal >= 0.95
    cpu_ratio_on_over_off: float | None  # requests per daemon CPU second; goal >= 0.95
    cache_hits_counted: float  # envd_requests_total{outcome="cache_hit"} of the daemon with metrics


@dataclass(slots=True)
class _Tally:
    rates: list[float]
    requests: int = 0
    cpu_s: float | None = 0.0


def _round(
    process: subprocess.Popen[bytes], target: str, request: bytes, streams: int, seconds: float,
    tally: _Tally,
) -> None:  # fmt: skip
    metadata = (
        (PROTOCOL_METADATA_KEY, str(envd.PROTOCOL_VERSION)),
        (VERSION_METADATA_KEY, envd.__version__),
    )
    before = _cpu_seconds(process.pid)
    rate, samples = asyncio.run(_load(target, request, streams, seconds, metadata))
    after = _cpu_seconds(process.pid)
    tally.rates.append(rate)
    tally.requests += len(samples)
    if before is None or after is None or tally.cpu_s is None:
        tally.cpu_s = None
    else:
        tally.cpu_s += after - before


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process `pid` (Linux), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _scrape(url: str) -> str:
    text: bytes = urllib.request.urlopen(url, timeout=10).read()
    return text.decode()


# a scrape per second from a process of its own (not this one's threads: they would take the
# load generator's interpreter lock, and the "on" rounds would lose throughput to the bench)
_SCRAPER = """
import sys, time, urllib.request
while True:
    urllib.request.urlopen(sys.argv[1], timeout=10).read()
    time.sleep(1.0)
"""


def measure(streams: int, seconds: float, rounds: int) -> MetricsCost:
    with open_channel("http") as source, tempfile.TemporaryDirectory(prefix="envd-mc-") as tmp:
        scratch = Path(tmp)
        request, packages = cache_hit_request(source.url, scratch / "home")
        metrics_url = f"http://127.0.0.1:{_free_port()}/metrics"
        listen = metrics_url.removeprefix("http://").removesuffix("/metrics")
        daemons: list[subprocess.Popen[bytes]] = []
        try:
            off_process, off = start_daemon(scratch, "off")
            daemons.append(off_process)
            on_process, on = start_daemon(scratch, "on", "--metrics-listen", listen)
            daemons.append(on_process)
            tallies = {"off": _Tally([]), "on": _Tally([])}
            for _ in range(rounds):
                _round(off_process, off, request, streams, seconds, tallies["off"])
                scraper = subprocess.Popen([sys.executable, "-c", _SCRAPER, metrics_url])
                try:
                    _round(on_process, on, request, streams, seconds, tallies["on"])
                finally:
                    scraper.terminate()
                    scraper.wait(10)
            counted = _cache_hits(_scrape(metrics_url))
        finally:
            for process in daemons:
                process.terminate()
                process.wait(10)
    off_side, on_side = (_side(tallies[k]) for k in ("off", "on"))
    cpu_ratio = None
    if off_side.requests_per_cpu_s and on_side.requests_per_cpu_s:
        cpu_ratio = ratio(on_side.requests_per_cpu_s, off_side.requests_per_cpu_s)
    return MetricsCost(
        streams=streams, seconds=seconds, rounds=rounds, packages=packages, off=off_side,
        on=on_side, ratio_on_over_off=ratio(on_side.requests_per_s, off_side.requests_per_s),
        cpu_ratio_on_over_off=cpu_ratio, cache_hits_counted=counted,
    )  # fmt: skip


def _side(tally: _Tally) -> Side:
    per_cpu = tally.requests / tally.cpu_s if tally.cpu_s else None
    return Side(statistics.median(tally.rates), tuple(tally.rates), per_cpu)


def _cache_hits(text: str) -> float:
    for line in text.splitlines():
        if line.startswith('envd_requests_total{outcome="cache_hit"'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_cost", description=__doc__)
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    result = measure(options.streams, options.seconds, options.rounds)
    if options.json:
        print(json.dumps(asdict(result), indent=2))
        return
    print(f"cache-hit Resolve, {result.packages} packages, {result.streams} streams, "
          f"{result.rounds} rounds of {result.seconds:g} s, {os.cpu_count()} CPUs")  # fmt: skip
    for name, side in (("metrics off", result.off), ("metrics on", result.on)):
        spread = " ".join(f"{s:.0f}" for s in side.samples)
        per_cpu = f"{side.requests_per_cpu_s:6.0f}" if side.requests_per_cpu_s else "     -"
        print(f"  {name:12} {side.requests_per_s:6.0f} req/s wall (median; rounds: {spread}), "
              f"{per_cpu} req per daemon CPU s")  # fmt: skip
    cpu = f"{result.cpu_ratio_on_over_off:.3f}" if result.cpu_ratio_on_over_off else "-"
    print(f"  ratio on/off: {result.ratio_on_over_off:.3f} wall, {cpu} per CPU second "
          f"(goal >= {GOAL}); {result.cache_hits_counted:.0f} cache hits counted")  # fmt: skip


if __name__ == "__main__":
    main()
