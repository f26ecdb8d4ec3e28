"""Shared fixtures: a loopback channel server and a cluster of real envd processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import EXAMPLE_CHANNEL, ChannelServer, Cluster, serve_channel
from postgres_server import PostgresServer, start_postgres
from postgres_server import unavailable_reason as postgres_unavailable


@pytest.fixture(scope="session")
def channel() -> Iterator[ChannelServer]:
    """The bundled conda-forge python 3.9 subset, over loopback HTTP."""
    with serve_channel(EXAMPLE_CHANNEL) as server:
        yield server


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole run (each test takes its own schema)."""
    reason = postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with start_postgres() as server:
        yield server
