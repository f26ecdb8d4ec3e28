"""`MetricsInterceptor` in a real in-process coordinator (gRPC on a unix socket, SQLite state,
local store), first in the chain before envd's auth interceptor: every call is counted by code,
refusals by error family, revocations on agent streams, and a cancelled stream cleans up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import envd
from envd.clock import SystemClock, random_id
from envd.daemon.auth import AuthInterceptor, Tokens
from envd.daemon.interceptors import MetricsInterceptor, _event_head
from envd.daemon.job_events import LocalJobEvents
from envd.daemon.metrics import DaemonMetrics
from envd.daemon.server import RunningDaemon, start_daemon
from envd.daemon.settings import CoordinatorSettings
from envd.daemon.state_sqlite import SqliteJobState
from envd.spec import RawDependency, RawSpec, normalize_spec
from envd.tokens import hash_token
from envd.v1 import agents_pb2, agents_pb2_grpc, environments_pb2, environments_pb2_grpc
from envd.wire import PROTOCOL_METADATA_KEY, VERSION_METADATA_KEY, spec_to_pb

CLIENT = ("authorization", "Bearer client-secret")
AGENT = ("authorization", "Bearer agent-secret")
PROTOCOL = (
    (PROTOCOL_METADATA_KEY, str(envd.PROTOCOL_VERSION)),
    (VERSION_METADATA_KEY, envd.__version__),
)
METADATA = (*PROTOCOL, CLIENT)
TOKENS = f"""
[[tokens]]
identity = "ada"
role = "client"
sha256 = "{hash_token("client-secret")}"

[[tokens]]
identity = "builder-1"
role = "agent"
sha256 = "{hash_token("agent-secret")}"
"""


def with_daemon(
    test: Callable[
        [RunningDaemon, DaemonMetrics, LocalJobEvents, grpc.aio.Channel], Awaitable[None]
    ],
) -> Callable[[Path], None]:
    def run(tmp_path: Path) -> None:
        async def main() -> None:
            metrics = DaemonMetrics(clock=SystemClock())
            events = LocalJobEvents()
            (tmp_path / "tokens.toml").write_text(TOKENS)
            auth = AuthInterceptor(Tokens(tmp_path / "tokens.toml"))
            daemon = await start_daemon(
                listen=f"unix:{tmp_path}/d.sock", store_url=str(tmp_path / "store"),
                state=SqliteJobState(tmp_path / "state.sqlite", random_id),
                settings=CoordinatorSettings(store_url=str(tmp_path / "store")), events=events,
                interceptors=[MetricsInterceptor(metrics), auth], hook=metrics.hook,
            )  # fmt: skip
            await metrics.watch(daemon.registry, daemon.state)
            try:
                async with grpc.aio.insecure_channel(daemon.address) as channel:
                    await test(daemon, metrics, events, channel)
            finally:
                await daemon.stop(grace=0)

        asyncio.run(main())

    run.__name__ = test.__name__
    return run


def handled(metrics: DaemonMetrics, service: str, method: str, code: str) -> float:
    labels = {"service": service, "method": method, "code": code}
    return metrics.registry.get_sample_value("envd_grpc_server_handled_total", labels) or 0.0


def request(channel: str) -> environments_pb2.ResolveRequest:
    spec = normalize_spec(RawSpec(conda=[RawDependency("zlib")], channels=[channel]))
    return environments_pb2.ResolveRequest(spec=spec_to_pb(spec), platforms=["linux-64"])


async def code_of(call: Any) -> grpc.StatusCode:
    try:
        async for _ in call:
            pass
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


@with_daemon
async def test_calls_are_counted_by_code_and_refusals_by_family(
    daemon: RunningDaemon, metrics: DaemonMetrics, events: LocalJobEvents, channel: grpc.aio.Channel
) -> None:
    stub = environments_pb2_grpc.EnvironmentsStub(channel)
    info = environments_pb2.GetInfoRequest()
    with pytest.raises(grpc.aio.AioRpcError) as refused_info:
        await stub.GetInfo(info, metadata=PROTOCOL)  # no token
    assert refused_info.value.code() is grpc.StatusCode.UNAUTHENTICATED
    agents = agents_pb2_grpc.AgentsStub(channel)
    assert (
        await code_of(agents.Connect(iter(()), metadata=METADATA))
        is grpc.StatusCode.PERMISSION_DENIED
    )
    await stub.GetInfo(info, metadata=METADATA)
    health = health_pb2_grpc.HealthStub(channel)
    await health.Check(health_pb2.HealthCheckRequest(), metadata=METADATA)
    # refused by the channel policy (no local channels by default): PERMISSION_DENIED, E205
    refused = stub.Resolve(request("file:///srv/channel"), metadata=METADATA)
    assert await code_of(refused) is grpc.StatusCode.PERMISSION_DENIED
    garbage = channel.unary_stream("/envd.v1.Environments/Resolve", lambda b: b, lambda b: b)
    assert (
        await code_of(garbage(b"\x0a\xff", metadata=METADATA)) is grpc.StatusCode.INVALID_ARGUMENT
    )

    env = "envd.v1.Environments"
    assert handled(metrics, env, "GetInfo", "UNAUTHENTICATED") == 1
    assert handled(metrics, env, "GetInfo", "OK") == 1
    assert handled(metrics, "grpc.health.v1.Health", "Check", "OK") == 1
    assert handled(metrics, env, "Resolve", "PERMISSION_DENIED") == 1
    assert handled(metrics, env, "Resolve", "INVALID_ARGUMENT") == 1
    value = metrics.registry.get_sample_value
    assert value("envd_grpc_server_started_total", {"service": env, "method": "Resolve"}) == 2
    assert value("envd_auth_errors_total", {"kind": "unauthenticated"}) == 1
    assert value("envd_auth_errors_total", {"kind": "permission_denied"}) == 1  # a client token
    assert handled(metrics, "envd.v1.Agents", "Connect", "PERMISSION_DENIED") == 1
    assert value("envd_channel_errors_total", {"kind": "channel_not_allowed"}) == 1
    assert (
        value("envd_grpc_server_handling_seconds_count", {"service": env, "method": "GetInfo"}) == 2
    )
    assert value("envd_requests_total", {"outcome": "failed", "platform": "linux-64"}) is None


@with_daemon
async def test_a_cancelled_stream_is_counted_and_its_servicer_cleans_up_at_once(
    daemon: RunningDaemon, metrics: DaemonMetrics, events: LocalJobEvents, channel: grpc.aio.Channel
) -> None:
    stub = environments_pb2_grpc.EnvironmentsStub(channel)
    call = stub.Resolve(request("conda-forge"), metadata=METADATA)  # no agent: it waits
    stages = [(await call.read()).stage, (await call.read()).stage]
    assert stages == [environments_pb2.STAGE_ACCEPTED, environments_pb2.STAGE_QUEUED]
    assert events.following() == 1
    call.cancel()
    for _ in range(200):
        if handled(metrics, "envd.v1.Environments", "Resolve", "CANCELLED") == 1:
            break
        await asyncio.sleep(0.01)
    assert handled(metrics, "envd.v1.Environments", "Resolve", "CANCELLED") == 1
    assert events.following() == 0
    assert metrics.registry.get_sample_value("envd_queue_depth", {"platform": "linux-64"}) == 1


@with_daemon
async def test_revocations_sent_on_agent_streams_are_counted(
    daemon: RunningDaemon, metrics: DaemonMetrics, events: LocalJobEvents, channel: grpc.aio.Channel
) -> None:
    outgoing: asyncio.Queue[agents_pb2.AgentMessage] = asyncio.Queue()
    register = agents_pb2.Register(
        agent_id="a1", host="h", platforms=["linux-64"], slots=1,
        protocol_version=envd.PROTOCOL_VERSION, version=envd.__version__,
    )  # fmt: skip
    await outgoing.put(agents_pb2.AgentMessage(register=register))

    async def messages() -> Any:
        while True:
            yield await outgoing.get()

    call = agents_pb2_grpc.AgentsStub(channel).Connect(messages(), metadata=(*PROTOCOL, AGENT))
    assert (await call.read()).HasField("welcome")
    assert metrics.registry.get_sample_value("envd_agents_connected", {"platform": "linux-64"}) == 1
    beat = agents_pb2.Heartbeat(lease_ids=["lease-unknown"])  # no such lease: revoked
    await outgoing.put(agents_pb2.AgentMessage(heartbeat=beat))
    assert (await call.read()).revoked.lease_id == "lease-unknown"
    assert metrics.registry.get_sample_value("envd_lease_revocations_total") == 1
    call.cancel()


@pytest.mark.parametrize(
    "event",
    [
        environments_pb2.ResolveEvent(
            req_id="a" * 40, platform="linux-64", stage=environments_pb2.STAGE_DONE,
            outcome=environments_pb2.OUTCOME_CACHE_HIT, full_id="b" * 40,
            description_json=b"{}" * 40_000,
        ),
        environments_pb2.ResolveEvent(platform="osx-arm64", stage=environments_pb2.STAGE_FAILED),
        environments_pb2.ResolveEvent(
            req_id="r", platform="p" * 300, job_id="j", stage=environments_pb2.STAGE_QUEUED,
            outcome=environments_pb2.OUTCOME_DEDUP, message="m",
        ),
        environments_pb2.ResolveEvent(),
    ],
)  # fmt: skip
def test_an_encoded_answer_is_read_from_its_head(event: environments_pb2.ResolveEvent) -> None:
    encoded = event.SerializeToString()
    assert _event_head(encoded) == (event.platform, event.stage, event.outcome)
