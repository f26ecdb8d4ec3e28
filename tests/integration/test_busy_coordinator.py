"""A burst of `Resolve` streams against a real daemon with a small `--max-concurrent-calls`:
every stream is answered or refused with RESOURCE_EXHAUSTED (never CANCELLED or UNKNOWN), and
`EnvdClient` gets its answer once the coordinator has room, after a backoff it announces."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import grpc
import pytest

import envd
from envd.client.api import BusyRetry, EnvdClient
from envd.spec import CondaDependency, Spec
from envd.v1 import common_pb2, environments_pb2
from envd.wire import PROTOCOL_METADATA_KEY, VERSION_METADATA_KEY
from harness import Cluster

pytestmark = pytest.mark.integration
LIMIT = 32
BURST = 3000
METADATA = ((PROTOCOL_METADATA_KEY, str(envd.PROTOCOL_VERSION)),
            (VERSION_METADATA_KEY, envd.__version__))  # fmt: skip


def request(no_wait: bool) -> environments_pb2.ResolveRequest:
    return environments_pb2.ResolveRequest(
        spec=common_pb2.Spec(conda=[common_pb2.CondaDependency(spec="python")],
                             channels=["conda-forge"]),
        platforms=["linux-64"], no_wait=no_wait,
    )  # fmt: skip


async def burst(address: str) -> Counter[str]:
    """BURST streams opened at once; how each ended (`answered`, or its status)."""
    ended: Counter[str] = Counter()
    async with grpc.aio.insecure_channel(address) as channel:
        resolve = channel.unary_stream(
            "/envd.v1.Environments/Resolve",
            request_serializer=environments_pb2.ResolveRequest.SerializeToString,
            response_deserializer=environments_pb2.ResolveEvent.FromString,
        )

        async def one() -> None:
            try:
                events = [e async for e in resolve(request(True), metadata=METADATA, timeout=25)]
                ended["answered" if events else "empty"] += 1
            except grpc.aio.AioRpcError as err:
                ended[err.code().name] += 1

        await asyncio.gather(*(one() for _ in range(BURST)))
    return ended


async def hold_then_release(address: str, seconds: float) -> None:
    """Take every call the daemon allows (Resolve streams waiting for an agent), keep them
    `seconds`, then end them."""
    async with grpc.aio.insecure_channel(address) as channel:
        resolve = channel.unary_stream(
            "/envd.v1.Environments/Resolve",
            request_serializer=environments_pb2.ResolveRequest.SerializeToString,
            response_deserializer=environments_pb2.ResolveEvent.FromString,
        )
        calls = [resolve(request(False), metadata=METADATA) for _ in range(LIMIT)]
        for call in calls:
            await call.read()  # its accepted event: the call holds a slot
        await asyncio.sleep(seconds)
        for call in calls:
            call.cancel()


def test_a_burst_under_the_default_limit_is_answered_in_full(cluster: Cluster) -> None:
    daemon = cluster.start_daemon(no_agent_timeout=600)
    assert asyncio.run(burst(cluster.address)) == Counter(answered=BURST)  # none CANCELLED
    assert "Traceback" not in daemon.log()


def test_a_burst_is_answered_or_refused_and_the_client_backs_off(cluster: Cluster) -> None:
    daemon = cluster.start_daemon(no_agent_timeout=600, args=["--max-concurrent-calls", str(LIMIT)])
    started = time.monotonic()
    ended = asyncio.run(burst(cluster.address))
    assert set(ended) <= {"answered", "RESOURCE_EXHAUSTED"}, ended
    assert sum(ended.values()) == BURST and ended["answered"] >= LIMIT, ended
    assert ended["RESOURCE_EXHAUSTED"] > 0, ended  # the limit was reached and said so

    notices: list[str] = []
    spec = Spec(conda=(CondaDependency("python", "python"),), channels=("conda-forge",))

    async def client_during_hold() -> str:
        holder = asyncio.create_task(hold_then_release(cluster.address, 1.5))
        await asyncio.sleep(0.8)  # the holder has every slot by now
        retry = BusyRetry(attempts=10, base_delay=0.2, max_delay=1.0)
        with EnvdClient(cluster.address, on_notice=notices.append, busy_retry=retry) as client:
            result = await asyncio.to_thread(client.resolve, spec, ["linux-64"], no_wait=True)
        await holder
        return result.events["linux-64"].job_id

    assert asyncio.run(client_during_hold()).startswith("job-")
    assert notices and all(
        n.startswith(f"the coordinator at `{cluster.address}` is busy (too many open calls); "
                     "retrying in ") for n in notices
    ), notices  # fmt: skip
    assert time.monotonic() - started < 30
    assert "Traceback" not in daemon.log()
