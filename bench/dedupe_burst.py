"""N concurrent identical `Resolve` streams for two platforms against a real `envd-daemon`:
every request is persisted and answered, and each platform gets exactly one job.

`python -m bench.dedupe_burst [--requests 1000] [--json]`. The streams open before any agent
exists (so all of them must be accepted and wait), then one `envd-agent` serving both platforms
connects; the figures are the time to accept them all and to answer them all."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc

import envd
from bench.channel import open_channel
from envd.spec import RawDependency, RawSpec, normalize_spec
from envd.v1 import common_pb2, environments_pb2, environments_pb2_grpc
from envd.wire import PROTOCOL_METADATA_KEY, VERSION_METADATA_KEY, spec_to_pb

BIN = Path(sys.executable).parent
PLATFORMS = ("linux-64", "osx-arm64")
METADATA = ((PROTOCOL_METADATA_KEY, str(envd.PROTOCOL_VERSION)), (VERSION_METADATA_KEY, "bench"))


@dataclass(frozen=True, slots=True)
class BurstResult:
    requests: int
    platforms: tuple[str, ...]
    accepted_s: float  # until every stream had its `accepted` events
    answered_s: float  # from the agent's start until every stream ended
    jobs_per_platform: dict[str, int]
    outcomes: dict[str, int]  # by final outcome, over requests x platforms
    failed_streams: int


async def _burst(target: str, request: environments_pb2.ResolveRequest, count: int,
                 on_accepted: asyncio.Event) -> tuple[list[list[environments_pb2.ResolveEvent]], int]:  # fmt: skip
    accepted = 0
    failed = 0

    async with grpc.aio.insecure_channel(target) as channel:
        stub = environments_pb2_grpc.EnvironmentsStub(channel)

        async def one() -> list[environments_pb2.ResolveEvent]:
            nonlocal accepted, failed
            events: list[environments_pb2.ResolveEvent] = []
            seen = 0
            try:
                async for event in stub.Resolve(request, metadata=METADATA, timeout=600):
                    events.append(event)
                    if event.stage == environments_pb2.STAGE_ACCEPTED:
                        seen += 1
                        if seen == len(request.platforms):
                            accepted += 1
                            if accepted == count:
                                on_accepted.set()
            except grpc.aio.AioRpcError:
                failed += 1
            return events

        results = await asyncio.gather(*(one() for _ in range(count)))
    return list(results), failed


def run_burst(count: int, scratch: Path) -> BurstResult:
    with open_channel("http") as source:
        spec = normalize_spec(RawSpec(conda=[RawDependency("python=3.9")], channels=[source.url]))
        request = environments_pb2.ResolveRequest(
            spec=spec_to_pb(spec), platforms=list(PLATFORMS), no_archives=True,
            requester=common_pb2.Requester(user="bench", host="bench"),
        )  # fmt: skip
        ready = scratch / "daemon.ready"
        with (scratch / "daemon.log").open("wb") as log:
            daemon = subprocess.Popen(
                [str(BIN / "envd-daemon"), "--listen", "127.0.0.1:0", "--log-level", "WARNING",
                 "--store", str(scratch / "store"), "--state", str(scratch / "state.sqlite"),
                 "--ready-file", str(ready)], stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        agent: subprocess.Popen[bytes] | None = None
        try:
            _wait_for(ready, daemon)
            target = ready.read_text().strip()

            async def main() -> tuple[float, float, list[list[environments_pb2.ResolveEvent]], int]:
                nonlocal agent
                all_accepted = asyncio.Event()
                start = time.perf_counter()
                task = asyncio.ensure_future(_burst(target, request, count, all_accepted))
                await asyncio.wait({task, asyncio.ensure_future(all_accepted.wait())},
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                accepted_s = time.perf_counter() - start
                with (scratch / "agent.log").open("wb") as log:
                    agent = subprocess.Popen(
                        [str(BIN / "envd-agent"), "--coordinator", target, "--log-level",
                         "WARNING", "--cache-dir", str(scratch / "cache"), "--slots", "2",
                         *(f"--platform={p}" for p in PLATFORMS)],
                        stdout=log, stderr=subprocess.STDOUT,
                    )  # fmt: skip
                answered_start = time.perf_counter()
                results, failed = await task
                return accepted_s, time.perf_counter() - answered_start, results, failed

            accepted_s, answered_s, results, failed = asyncio.run(main())
        finally:
            for process in (agent, daemon):
                if process is not None:
                    process.terminate()
                    process.wait(10)
    jobs: dict[str, set[str]] = {p: set() for p in PLATFORMS}
    outcomes: Counter[str] = Counter()
    for events in results:
        for event in events:
            if event.job_id:
                jobs[event.platform].add(event.job_id)
            if event.stage in (environments_pb2.STAGE_DONE, environments_pb2.STAGE_FAILED):
                outcomes[environments_pb2.Outcome.Name(event.outcome).removeprefix("OUTCOME_")
                         .lower()] += 1  # fmt: skip
    return BurstResult(
        requests=count, platforms=PLATFORMS, accepted_s=accepted_s, answered_s=answered_s,
        jobs_per_platform={p: len(j) for p, j in jobs.items()}, outcomes=dict(outcomes),
        failed_streams=failed,
    )  # fmt: skip


def _wait_for(ready: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("failed to start envd-daemon for the burst")
        time.sleep(0.05)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dedupe_burst", description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="envd-burst-") as tmp:
        result = run_burst(options.requests, Path(tmp))
    if options.json:
        print(json.dumps(asdict(result), indent=2))
        return
    print(f"{result.requests} identical requests x {len(result.platforms)} platforms")
    print(f"  all accepted in {result.accepted_s:.2f} s (no agent yet), all answered "
          f"{result.answered_s:.2f} s after the agent started")  # fmt: skip
    print(f"  jobs per platform: {result.jobs_per_platform}")
    print(f"  outcomes: {result.outcomes}; failed streams: {result.failed_streams}")


if __name__ == "__main__":
    main()
