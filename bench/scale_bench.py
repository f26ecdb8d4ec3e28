"""Scaling out: job throughput with 1, 2, 4, 8 agents on I/O-bound jobs (and one agent with
as many slots), and cache-hit throughput of 1 vs 3 replicas on PostgreSQL vs 1 on SQLite.

`python -m bench.scale_bench [--agents 1,2,4,8] [--jobs 32] [--delay 0.5] [--json]` starts
real daemons, agents and a PostgreSQL server (the tests' launchers) on loopback."""

from __future__ import annotations

import argparse
import functools
import http.server
import itertools
import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.cache_hit import EnvdCacheHit, throughput
from bench.channel import EXAMPLE_CHANNEL
from bench.emulators import _launcher
from envd.client.api import EnvdClient
from envd.progress import Stage
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec

PLATFORM = "linux-64"


class _DelayedChannel(http.server.SimpleHTTPRequestHandler):
    """The example channel under any prefix (`/c17/linux-64/repodata.json`), so each job
    names a channel no agent has warm; each repodata response waits `delay` seconds first,
    as a distant channel would (I/O, not the 2 cores, bounds a job)."""

    delay = 0.0

    def translate_path(self, path: str) -> str:
        parts = path.split("/", 2)
        return super().translate_path("/" + parts[2] if len(parts) > 2 else path)

    def do_GET(self) -> None:
        if self.path.endswith("repodata.json"):
            time.sleep(self.delay)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def delayed_channel(delay: float) -> Iterator[str]:
    handler = type("Handler", (_DelayedChannel,), {"delay": delay})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(EXAMPLE_CHANNEL))
    )
    thread = threading.Thread(target=server.serve_forever, name="bench-channel", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def job_spec(channel: str, index: int) -> Spec:
    return normalize_spec(
        RawSpec(conda=[RawDependency("python=3.9")], channels=[f"{channel}/c{index}"])
    )


def run_jobs(target: str, channel: str, first: int, count: int) -> float:
    """`count` distinct jobs at once; seconds until the last is done."""

    def one(index: int) -> None:
        with EnvdClient(target) as client:
            result = client.resolve(job_spec(channel, index), [PLATFORM], no_archives=True)
        event = result.events[PLATFORM]
        if event.stage is not Stage.DONE:
            raise RuntimeError(f"failed to benchmark jobs: {event.error}")

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(one, range(first, first + count)))
    return time.perf_counter() - start


def agent_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def agents_section(counts: Sequence[int], jobs: int, delay: float) -> dict[str, Any]:
    harness = _launcher("harness")
    rows: dict[str, Any] = {}
    with delayed_channel(delay) as channel:
        layouts = [(f"{n} agent(s) x 1 slot", n, 1) for n in counts]
        layouts.append((f"1 agent x {max(counts)} slots", 1, max(counts)))
        for index, (label, agents, slots) in enumerate(layouts):
            with tempfile.TemporaryDirectory(prefix="envd-bench-scale-") as tmp:
                cluster = harness.Cluster(Path(tmp))
                try:
                    cluster.start_daemon(lease_ttl=10.0, heartbeat=1.0)
                    started = [cluster.start_agent(f"agent-{i}", [PLATFORM], slots=slots)
                               for i in range(agents)]  # fmt: skip
                    run_jobs(cluster.address, channel, 100_000 * index, agents * slots)  # warm
                    seconds = run_jobs(cluster.address, channel, 100_000 * index + 1000, jobs)
                    rss = max(agent_rss_mib(p.popen.pid) for p in started)
                finally:
                    cluster.stop()
            rows[label] = {"agents": agents, "slots": slots, "jobs": jobs,
                           "jobs_per_s": jobs / seconds, "max_agent_rss_mib": rss}  # fmt: skip
    base = rows[f"{counts[0]} agent(s) x 1 slot"]["jobs_per_s"] / counts[0]
    for row in rows.values():
        row["ratio_to_one_agent"] = row["jobs_per_s"] / base
    return {"delay_s": delay, "rows": rows}


def cache_hit_section(requests: int, threads: int) -> dict[str, Any]:
    harness, pg = _launcher("harness"), _launcher("postgres_server")
    rows: dict[str, Any] = {}
    with delayed_channel(0.0) as channel, pg.start_postgres() as server:
        spec = job_spec(channel, 0)
        for label, replicas, postgres in (
            ("1 replica, SQLite", 1, False),
            ("1 replica, PostgreSQL", 1, True),
            ("3 replicas, PostgreSQL", 3, True),
        ):
            with tempfile.TemporaryDirectory(prefix="envd-bench-hits-") as tmp:
                cluster = harness.Cluster(Path(tmp))
                try:
                    state = server.new_schema() if postgres else None
                    addresses = []
                    for _ in range(replicas):
                        cluster.start_daemon(state=state, lease_ttl=10.0, heartbeat=1.0)
                        addresses.append(cluster.address)
                    cluster.start_agent("agent", [PLATFORM])
                    run_jobs(cluster.address, channel, 0, 1)  # the store now has it
                    rate = throughput(_spread(addresses, spec), requests, threads)
                finally:
                    cluster.stop()
            rows[label] = {"replicas": replicas, "requests_per_s": rate.requests_per_s,
                           "requests": requests, "threads": threads}  # fmt: skip
    base = rows["1 replica, SQLite"]["requests_per_s"]
    for row in rows.values():
        row["ratio_to_sqlite"] = row["requests_per_s"] / base
    return rows


def _spread(addresses: list[str], spec: Spec) -> Callable[[], EnvdCacheHit]:
    """Callers dialing the replicas in turns: each starts its address list at the next one."""
    turn = itertools.count()

    def caller() -> EnvdCacheHit:
        first = next(turn) % len(addresses)
        order = addresses[first:] + addresses[:first]
        return EnvdCacheHit("ipv4:" + ",".join(order), spec, PLATFORM)

    return caller


def render(result: dict[str, Any]) -> str:
    agents = result["agents"]
    lines = [f"8. job throughput, I/O-bound jobs (each repodata response delayed "
             f"{agents['delay_s']:g} s), ratio to 1 agent"]  # fmt: skip
    for label, row in agents["rows"].items():
        lines.append(f"   {label:<24} {row['jobs_per_s']:6.2f} jobs/s  x{row['ratio_to_one_agent']:.2f}"
                     f"  (agent RSS <= {row['max_agent_rss_mib']:.0f} MiB)")  # fmt: skip
    lines.append("9. cache-hit throughput, ratio to 1 replica on SQLite")
    for label, row in result["cache_hits"].items():
        lines.append(
            f"   {label:<24} {row['requests_per_s']:7.0f} req/s  x{row['ratio_to_sqlite']:.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_bench", description=__doc__)
    parser.add_argument("--agents", default="1,2,4,8", help="agent counts (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=32, help="jobs per count (default %(default)s)")
    parser.add_argument("--delay", type=float, default=2.0, help="s per repodata response")
    parser.add_argument("--requests", type=int, default=600, help="cache hits per setup")
    parser.add_argument("--threads", type=int, default=6, help="clients asking at once")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.agents.split(",")]
    result = {
        "agents": agents_section(counts, args.jobs, args.delay),
        "cache_hits": cache_hit_section(args.requests, args.threads),
    }
    print(json.dumps(result, indent=2) if args.json else render(result))


if __name__ == "__main__":
    main()
