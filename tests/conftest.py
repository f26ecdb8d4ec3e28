"""Shared fixtures: a loopback channel server and a cluster of real envd processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

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


# Property tests are derandomized: the same examples on every run and machine (a failure
# reproduces by rerunning), each property within a few seconds.
settings.register_profile("envd", derandomize=True, deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
settings.load_profile("envd")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    """The suite runs in random order (pytest-randomly); say how to replay a failing order."""
    seed = getattr(config.option, "randomly_seed", None)
    if exitstatus != 0 and seed is not None:
        terminalreporter.write_line(
            f"tests ran in random order with seed {seed}; rerun that order with "
            f"`.venv/bin/python -m pytest -q -p randomly --randomly-seed={seed}`"
        )


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole run (each test takes its own schema)."""
    reason = postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with start_postgres() as server:
        yield server
