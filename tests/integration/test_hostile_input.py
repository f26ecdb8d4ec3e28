"""Hostile input over gRPC against a real daemon: bodies that aren't protobuf, NUL bytes, and
a bounded fuzz of the Resolve surface (fixed seed) that must never see UNKNOWN or INTERNAL."""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest

from envd.v1 import agents_pb2, common_pb2, environments_pb2
from harness import Cluster

pytestmark = pytest.mark.integration
RESOLVE = "/envd.v1.Environments/Resolve"
CONNECT = "/envd.v1.Agents/Connect"
ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.DEADLINE_EXCEEDED,  # a valid request waiting for an agent
}


def _identity(data: bytes) -> bytes:
    return data


def valid_request() -> bytes:
    return environments_pb2.ResolveRequest(
        spec=common_pb2.Spec(
            conda=[common_pb2.CondaDependency(spec="python >=3.9"),
                   common_pb2.CondaDependency(spec="conda-forge::numpy 1.26.*")],
            channels=["conda-forge"], virtual_packages={"__glibc": "2.28"},
        ),
        platforms=["linux-64", "osx-arm64"], no_wait=True,
    ).SerializeToString()  # fmt: skip


def mutate(rng: random.Random, data: bytes) -> bytes:
    body = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        choice = rng.random()
        if choice < 0.4 and body:
            body[rng.randrange(len(body))] = rng.randrange(256)
        elif choice < 0.6 and body:
            del body[rng.randrange(len(body)) :]
        elif choice < 0.8:
            at = rng.randrange(len(body) + 1)
            body[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            body += rng.choice([b"\x00", b"\xff" * 5, b"\x12\x05lin\x00x", b"\x0a\x80\x80\x80"])
    return bytes(body)


async def _fuzz(address: str, inputs: list[bytes]) -> dict[grpc.StatusCode, int]:
    seen: dict[grpc.StatusCode, int] = {}
    bad: list[str] = []
    limit = asyncio.Semaphore(24)
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_stream(RESOLVE, request_serializer=_identity,
                                    response_deserializer=_identity)  # fmt: skip

        async def one(body: bytes) -> None:
            async with limit:
                try:
                    async for _ in call(body, timeout=3):
                        pass
                    code = grpc.StatusCode.OK
                except grpc.aio.AioRpcError as err:
                    code = err.code()
                    if code not in ALLOWED:
                        bad.append(f"{code.name}: {err.details()} for {body!r}")
                seen[code] = seen.get(code, 0) + 1

        await asyncio.gather(*(one(body) for body in inputs))
    assert bad == [], bad[:5]
    return seen


def test_bodies_that_are_not_protobuf_are_invalid_argument(cluster: Cluster) -> None:
    cluster.start_daemon()
    with grpc.insecure_channel(cluster.address) as channel:
        resolve = channel.unary_stream(RESOLVE, request_serializer=_identity,
                                       response_deserializer=_identity)  # fmt: skip
        with pytest.raises(grpc.RpcError) as info:
            list(resolve(b"\xff\xff\xff not protobuf", timeout=5))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid `envd.v1.ResolveRequest` message" in (info.value.details() or "")
        connect = channel.stream_stream(CONNECT, request_serializer=_identity,
                                        response_deserializer=_identity)  # fmt: skip
        with pytest.raises(grpc.RpcError) as agent_info:
            list(connect(iter([b"\xff\xff garbage"]), timeout=5))
        assert agent_info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        register = agents_pb2.AgentMessage(register=agents_pb2.Register(
            agent_id="a\x00b", host="h", platforms=["linux-64"], protocol_version=1,
        )).SerializeToString()  # fmt: skip
        assert register  # a NUL in a proto3 string is refused by protobuf itself on decode
    assert "Traceback" not in cluster.processes[0].log()


def test_a_bounded_fuzz_of_resolve_never_gets_unknown_or_internal(cluster: Cluster) -> None:
    daemon = cluster.start_daemon(no_agent_timeout=600)
    rng = random.Random(20261204)
    base = valid_request()
    inputs = [mutate(rng, base) for _ in range(2000)]
    inputs += [bytes(rng.randrange(256) for _ in range(rng.randint(0, 64))) for _ in range(300)]
    seen = asyncio.run(_fuzz(cluster.address, inputs))
    assert seen.get(grpc.StatusCode.INVALID_ARGUMENT, 0) > 100  # the fuzz reached the checks
    log = daemon.log()
    assert "Traceback" not in log, log[-3000:]
