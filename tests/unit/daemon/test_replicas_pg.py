"""FleetRegistry: the agents connected here plus those other replicas reported, until when."""

from __future__ import annotations

from envd.daemon.agent_registry import ConnectedAgent
from envd.daemon.replicas_pg import FleetRegistry


def test_remote_agents_count_until_their_rows_expire() -> None:
    registry = FleetRegistry()
    registry.add(ConnectedAgent("here", "h", ("linux-64",), 1, last_seen=115.0))
    registry.see_remote([(("linux-64", "osx-arm64"), 130.0), (("win-64",), 110.0)])
    assert registry.changed.is_set()  # an arrival is told to the others at the next beat
    assert registry.serving_count("linux-64", 120.0, 30.0) == 2
    assert registry.serving_count("osx-arm64", 120.0, 30.0) == 1
    assert registry.serving_count("win-64", 120.0, 30.0) == 0  # its replica stopped saying so
    assert registry.serving_count("linux-64", 140.0, 30.0) == 1  # only the live local one
    assert registry.platforms() == ["linux-64", "osx-arm64", "win-64"]
    assert registry.agents_by_platform() == {"linux-64": 2, "osx-arm64": 1, "win-64": 1}
