"""Coordinator addresses: what is accepted, what is refused, and why nothing answers."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from envd.client.address import CoordinatorAddress, parse_address, unreachable_cause
from envd.errors import ConfigError
from harness import free_port


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("localhost:50051", CoordinatorAddress("localhost:50051", "localhost", 50051)),
        ("10.0.0.5:1", CoordinatorAddress("10.0.0.5:1", "10.0.0.5", 1)),
        ("daemon.example.org.:65535",
         CoordinatorAddress("daemon.example.org.:65535", "daemon.example.org.", 65535)),
        ("[::1]:50051", CoordinatorAddress("[::1]:50051", "::1", 50051)),
        ("unix:/run/envd.sock", CoordinatorAddress("unix:/run/envd.sock", path="/run/envd.sock")),
        ("unix:///run/envd.sock",
         CoordinatorAddress("unix:/run/envd.sock", path="/run/envd.sock")),
        ("unix:relative.sock", CoordinatorAddress("unix:relative.sock", path="relative.sock")),
    ],
)  # fmt: skip
def test_accepted(text: str, parsed: CoordinatorAddress) -> None:
    assert parse_address(text) == parsed


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("http://foo", "`http://` URLs are not addresses"),
        ("grpc://foo:1", "`grpc://` URLs are not addresses"),
        ("foo", "the port is missing"),
        (":50051", "the port is missing"),
        ("foo:", "`` is not a port (1-65535)"),
        ("foo:0", "`0` is not a port (1-65535)"),
        ("foo:http", "`http` is not a port (1-65535)"),
        ("[zz]:1", "`[zz]` is not an IPv6 address"),
        ("-foo:1", "`-foo` is not a host name or IP address"),
        ("a b:1", "`a b` is not a host name or IP address"),
        ("unix:", "the socket path is empty"),
    ],
)
def test_refused_quoting_it(text: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_address(text, "ENVD_COORDINATOR")
    assert info.value.message == (
        f"invalid coordinator address `{text}` (from ENVD_COORDINATOR): {why}"
    )
    assert info.value.exit_code == 2


def test_cause_in_plain_words(tmp_path: Path) -> None:
    assert unreachable_cause(parse_address(f"127.0.0.1:{free_port()}"), 1) == "connection refused"
    assert unreachable_cause(parse_address("no-such-host.invalid:1"), 1) == "name not resolved"
    missing = tmp_path / "none.sock"
    assert unreachable_cause(parse_address(f"unix:{missing}"), 1) == (
        f"no socket file at `{missing}`"
    )
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(stale))  # bound, never listening: what a killed daemon leaves
    assert unreachable_cause(parse_address(f"unix:{stale}"), 1) == "connection refused"


def test_no_cause_when_something_listens() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        address = parse_address(f"127.0.0.1:{sock.getsockname()[1]}")
        assert unreachable_cause(address, 1) is None
