"""Shared fixtures: a loopback channel server and a cluster of real envd processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import EXAMPLE_CHANNEL, ChannelServer, Cluster, serve_channel


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
