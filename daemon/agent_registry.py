"""The agents connected right now: their platforms, free slots, leases and liveness."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from envd.v1 import agents_pb2


@dataclass(slots=True)
class ConnectedAgent:
    agent_id: str
    host: str
    platforms: tuple[str, ...]
    slots: int
    last_seen: float
    outbox: asyncio.Queue[agents_pb2.CoordinatorMessage] = field(default_factory=asyncio.Queue)
    leases: set[str] = field(default_factory=set)

    def live(self, now: float, ttl: float) -> bool:
        """An agent that stopped heartbeating (e.g. SIGSTOP) gets no new jobs."""
        return now - self.last_seen <= ttl

    def free_slots(self) -> int:
        return max(0, self.slots - len(self.leases))


class AgentRegistry:
    def __init__(self) -> None:
        self._agents: dict[str, ConnectedAgent] = {}

    def add(self, agent: ConnectedAgent) -> None:
        self._agents[agent.agent_id] = agent

    def remove(self, agent: ConnectedAgent) -> None:
        if self._agents.get(agent.agent_id) is agent:
            del self._agents[agent.agent_id]

    def get(self, agent_id: str) -> ConnectedAgent | None:
        return self._agents.get(agent_id)

    def all(self) -> list[ConnectedAgent]:
        return list(self._agents.values())

    def serving(self, platform: str, now: float, ttl: float) -> list[ConnectedAgent]:
        return [a for a in self._agents.values() if platform in a.platforms and a.live(now, ttl)]

    def platforms(self) -> list[str]:
        return sorted({p for a in self._agents.values() for p in a.platforms})

    def holder_of(self, lease_id: str) -> ConnectedAgent | None:
        for agent in self._agents.values():
            if lease_id in agent.leases:
                return agent
        return None
