"""The coordinator's tunables, passed whole to every part that needs one of them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CoordinatorSettings:
    store_url: str
    lease_ttl: float = 30.0
    heartbeat_interval: float = 5.0
    no_agent_timeout: float = 300.0
    sweep_interval: float = 0.5
