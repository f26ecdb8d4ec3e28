"""The shared metrics parts: `--metrics-listen` parsing, the endpoint, label children."""

from __future__ import annotations

import argparse
import socket
import urllib.request

import pytest
from prometheus_client import REGISTRY, Counter

from envd.errors import ConfigError
from envd.metrics import Children, listen_address, new_registry, register_build_info, serve_metrics


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:9464", ("::1", 9464)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_listen_address(text: str, expected: tuple[str, int]) -> None:
    assert listen_address(text) == expected


@pytest.mark.parametrize("text", ["9464", ":9464", "host.example:9464", "127.0.0.1:70000", "x:y"])
def test_listen_address_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not HOST:PORT"):
        listen_address(text)


def test_endpoint_serves_its_own_registry_and_stops() -> None:
    registry = new_registry()
    register_build_info(registry, "daemon")
    endpoint = serve_metrics(registry, ("127.0.0.1", 0))
    try:
        text = urllib.request.urlopen(endpoint.url, timeout=5).read().decode()
    finally:
        endpoint.stop()
    assert 'envd_build_info{role="daemon",version="0.1.0"} 1.0' in text
    assert "_created" not in text
    assert not [m for m in REGISTRY.collect() if m.name.startswith("envd_")]
    with pytest.raises(OSError):
        urllib.request.urlopen(endpoint.url, timeout=1)


def test_a_taken_port_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"failed to serve metrics on `127.0.0.1:{port}`"):
            serve_metrics(new_registry(), ("127.0.0.1", port))


def test_children_are_looked_up_once() -> None:
    registry = new_registry()
    children = Children[Counter](Counter("envd_things", "Things.", ["kind"], registry=registry))
    assert children("a") is children("a")
    children("a").inc(2)
    assert registry.get_sample_value("envd_things_total", {"kind": "a"}) == 2
