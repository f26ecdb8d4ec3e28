"""The shared metrics parts: `--metrics-listen` parsing, the endpoint, label children, and the
lock-free loop metrics (exposed exactly as prometheus-client's own)."""

from __future__ import annotations

import argparse
import socket
import urllib.request

import pytest
from prometheus_client import REGISTRY, Counter, Histogram, generate_latest

from envd.errors import ConfigError
from envd.metrics import (
    SECONDS_BUCKETS,
    Children,
    LoopCounter,
    LoopHistogram,
    LoopMetrics,
    listen_address,
    new_registry,
    register_build_info,
    serve_metrics,
)


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


def test_loop_metrics_expose_what_prometheus_client_would() -> None:
    """Same names, samples and bucket bounds as prometheus-client's own Counter and
    Histogram given the same updates."""
    theirs, ours = new_registry(), new_registry()
    counter = Counter("envd_calls", "Calls.", ["method", "code"], registry=theirs)
    histogram = Histogram("envd_call_seconds", "Seconds.", ["method"], registry=theirs,
                          buckets=SECONDS_BUCKETS)  # fmt: skip
    loop_counter = LoopCounter("envd_calls", "Calls.", ("method", "code"))
    loop_histogram = LoopHistogram("envd_call_seconds", "Seconds.", ("method",), SECONDS_BUCKETS)
    ours.register(LoopMetrics([loop_counter, loop_histogram]))
    assert generate_latest(ours) == generate_latest(theirs)  # listed before any update
    for method, code, seconds in [("Resolve", "OK", 0.001), ("Resolve", "OK", 0.0011),
                                  ("Wait", "CANCELLED", 3600.0), ("Resolve", "OK", 7200.0),
                                  ("GetInfo", "OK", 0.0)]:  # fmt: skip
        counter.labels(method, code).inc()
        loop_counter.inc((method, code))
        histogram.labels(method).observe(seconds)
        loop_histogram.observe((method,), seconds)
    assert sorted(generate_latest(ours).splitlines()) == sorted(
        generate_latest(theirs).splitlines()
    )
