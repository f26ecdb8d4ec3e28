"""The agents connected right now: their platforms, free slots, leases and liveness.

Sessions are keyed by connection, never by the id an agent claims: an impostor presenting
another agent's id can't replace or knock out the real one. Messages to an agent wait in its
outbox as domain values; the servicer encodes them."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from .state import Job


@dataclass(frozen=True, slots=True)
class AssignJob:
    job: Job


@dataclass(frozen=True, slots=True)
class RevokeLease:
    lease_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class CloseSession:
    """End the stream (coordinator shutting down); the agent reconnects elsewhere or later."""

    reason: str


ToAgent = AssignJob | RevokeLease | CloseSession
_session_numbers = itertools.count(1)


@dataclass(slots=True)
class ConnectedAgent:
    agent_id: str
    host: str
    platforms: tuple[str, ...]
    slots: int
    last_seen: float
    session: int = field(default_factory=lambda: next(_session_numbers))
    outbox: asyncio.Queue[ToAgent] = field(default_factory=asyncio.Queue)
    leases: set[str] = field(default_factory=set)
    # the agent gave work back (it is stopping): no new leases for this session
    draining: bool = False
    # the platform its machine runs ("" if it did not say): it alone builds wheels natively
    native_platform: str = ""
    build_pythons: tuple[str, ...] = ()

    def live(self, now: float, ttl: float) -> bool:
        """An agent that stopped heartbeating (e.g. SIGSTOP) gets no new jobs."""
        return now - self.last_seen <= ttl

    def free_slots(self) -> int:
        if self.draining:
            return 0
        return max(0, self.slots - len(self.leases))

    def send(self, message: ToAgent) -> None:
        self.outbox.put_nowait(message)


class AgentRegistry:
    def __init__(self) -> None:
        self._sessions: dict[int, ConnectedAgent] = {}
        self._holders: dict[str, ConnectedAgent] = {}

    def add(self, agent: ConnectedAgent) -> None:
        self._sessions[agent.session] = agent

    def remove(self, agent: ConnectedAgent) -> None:
        self._sessions.pop(agent.session, None)
        for lease_id in agent.leases:
            if self._holders.get(lease_id) is agent:
                del self._holders[lease_id]

    def hold(self, agent: ConnectedAgent, lease_id: str) -> None:
        """`agent` holds `lease_id` now (a new lease, or one reclaimed after a reconnect)."""
        previous = self._holders.get(lease_id)
        if previous is not None and previous is not agent:
            previous.leases.discard(lease_id)
        self._holders[lease_id] = agent
        agent.leases.add(lease_id)

    def release(self, lease_id: str) -> ConnectedAgent | None:
        """Forget who holds `lease_id`; the holder, if one is connected."""
        holder = self._holders.pop(lease_id, None)
        if holder is not None:
            holder.leases.discard(lease_id)
        return holder

    def connected(self, agent: ConnectedAgent) -> bool:
        return self._sessions.get(agent.session) is agent

    def holder_of(self, lease_id: str) -> ConnectedAgent | None:
        return self._holders.get(lease_id)

    def all(self) -> list[ConnectedAgent]:
        return list(self._sessions.values())

    def serving(self, platform: str, now: float, ttl: float) -> list[ConnectedAgent]:
        return [a for a in self._sessions.values() if platform in a.platforms and a.live(now, ttl)]

    def serving_count(self, platform: str, now: float, ttl: float) -> int:
        """Live agents serving `platform`: here, or fleet-wide where replicas share a view."""
        return len(self.serving(platform, now, ttl))

    def native_pythons(self, platform: str, now: float, ttl: float) -> frozenset[str] | None:
        """The pythons the live agents native to `platform` (connected here) build for; None
        when there is no such agent (then a native-only job waits for one, whatever python).
        (Replicas do not share native platforms: a native-only job waits for a native agent of
        the replica whose sweep sees it.)"""
        natives = [a for a in self.serving(platform, now, ttl) if a.native_platform == platform]
        if not natives:
            return None
        return frozenset(v for a in natives for v in a.build_pythons)

    def platforms(self) -> list[str]:
        return sorted({p for a in self._sessions.values() for p in a.platforms})

    def agents_by_platform(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for agent in self._sessions.values():
            for platform in agent.platforms:
                counts[platform] = counts.get(platform, 0) + 1
        return dict(sorted(counts.items()))
