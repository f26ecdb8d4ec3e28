"""The client's channel takes credentials and interceptors, so authentication can plug in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from envd.client.api import EnvdClient
from envd.errors import CoordinatorUnavailableError
from envd.progress import Outcome
from envd.spec import RawDependency, RawSpec, normalize_spec
from harness import ChannelServer, Cluster

pytestmark = pytest.mark.integration


class StampToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """What an auth interceptor does: add a header to every call; records the calls it saw."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    def _stamp(self, details: Any) -> Any:
        self.methods.append(details.method)
        metadata = [*(details.metadata or ()), ("authorization", "Bearer t0k3n")]
        return details._replace(metadata=metadata)

    def intercept_unary_unary(self, call: Callable[..., Any], details: Any, request: Any) -> Any:
        return call(self._stamp(details), request)

    def intercept_unary_stream(self, call: Callable[..., Any], details: Any, request: Any) -> Any:
        return call(self._stamp(details), request)


def test_interceptors_see_every_call(cluster: Cluster, channel: ChannelServer) -> None:
    cluster.start_daemon()
    cluster.start_agent("agent", ["linux-64"])
    spec = normalize_spec(RawSpec(conda=[RawDependency("python=3.9")], channels=[channel.url]))
    stamp = StampToken()
    with EnvdClient(cluster.address, interceptors=[stamp]) as client:
        assert client.info(timeout=5).protocol_version == 1
        result = client.resolve(spec, ["linux-64"], no_archives=True)
        assert result.events["linux-64"].outcome is Outcome.RESOLVED
        assert client.list_environments()
    assert stamp.methods == [
        "/envd.v1.Environments/GetInfo",
        "/envd.v1.Environments/Resolve",
        "/envd.v1.Environments/ListEnvironments",
    ]


def test_credentials_make_a_secure_channel(cluster: Cluster) -> None:
    cluster.start_daemon()  # serves plaintext: a TLS handshake with it must fail
    with EnvdClient(cluster.address, credentials=grpc.ssl_channel_credentials()) as client:
        with pytest.raises(CoordinatorUnavailableError, match="failed to reach the coordinator"):
            client.info(timeout=2, wait_for_ready=False)
