"""The gRPC contract around resolving: health, reflection, versions, limits, determinism."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import envd
from envd.client.api import EnvdClient
from envd.errors import IncompatibleVersionError, RequestTooLargeError
from envd.progress import Outcome
from envd.spec import RawDependency, RawSpec, normalize_spec
from envd.v1 import agents_pb2, agents_pb2_grpc, environments_pb2, environments_pb2_grpc
from envd.wire import error_from_rpc
from harness import ChannelServer, Cluster

pytestmark = pytest.mark.integration


def test_health_and_reflection(cluster: Cluster) -> None:
    cluster.start_daemon()
    with grpc.insecure_channel(cluster.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "envd.v1.Environments", "envd.v1.Agents"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (reply,) = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
        names = {s.name for s in reply.list_services_response.service}
        assert {"envd.v1.Environments", "envd.v1.Agents"} <= names


def test_incompatible_client_and_agent_are_refused(cluster: Cluster) -> None:
    cluster.start_daemon()
    with grpc.insecure_channel(cluster.address) as channel:
        stub = environments_pb2_grpc.EnvironmentsStub(channel)
        metadata = (("envd-protocol", "99"), ("envd-version", "9.9.9"))
        with pytest.raises(grpc.RpcError) as info:
            stub.ListEnvironments(environments_pb2.ListEnvironmentsRequest(), metadata=metadata)
        err = error_from_rpc(info.value)
        assert isinstance(err, IncompatibleVersionError)
        assert err.message == (
            f"client speaks protocol 99 (envd 9.9.9); this coordinator speaks "
            f"{envd.PROTOCOL_VERSION} (envd {envd.__version__})"
        )
        register = agents_pb2.AgentMessage(
            register=agents_pb2.Register(
                agent_id="old", host="h", platforms=["linux-64"], protocol_version=0, version="0.0"
            )
        )
        with pytest.raises(grpc.RpcError) as agent_info:
            list(agents_pb2_grpc.AgentsStub(channel).Connect(iter([register]), timeout=5))
        assert agent_info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "agent `old` speaks protocol 0" in (agent_info.value.details() or "")


def test_oversized_requests_are_refused(cluster: Cluster) -> None:
    cluster.start_daemon()
    many = normalize_spec(
        RawSpec(conda=[RawDependency(f"pkg{i}") for i in range(5001)], channels=["conda-forge"])
    )
    huge = RawSpec(conda=[RawDependency(f"pkg{i}-{'x' * 1000}") for i in range(4500)])
    with EnvdClient(cluster.address) as client:
        with pytest.raises(RequestTooLargeError, match="5001 dependencies is over the limit"):
            client.resolve(many, ["linux-64"])
        with pytest.raises(RequestTooLargeError, match="refused the request"):
            client.resolve(normalize_spec(huge), ["linux-64"])
    assert not (cluster.root / "store").exists() or not list((cluster.root / "store").rglob("*"))


def test_two_agents_on_different_hosts_give_the_same_full_id(
    cluster: Cluster, channel: ChannelServer
) -> None:
    cluster.start_daemon()
    spec = normalize_spec(RawSpec(conda=[RawDependency("python=3.9")], channels=[channel.url]))
    first_agent = cluster.start_agent("host-a", ["linux-64"])
    with EnvdClient(cluster.address) as client:
        first = client.resolve(spec, ["linux-64"], no_archives=True).events["linux-64"]
        first_agent.stop()
        cluster.start_agent("host-b", ["linux-64"])
        second = client.resolve(spec, ["linux-64"], force=True, no_archives=True).events["linux-64"]
    assert first.agent == "host-a" and second.agent == "host-b"
    assert first.outcome is second.outcome is Outcome.RESOLVED
    assert first.full_id == second.full_id
