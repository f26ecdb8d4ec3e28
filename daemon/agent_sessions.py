"""What the coordinator does with each message a connected agent sends (domain values in;
the servicer decodes and encodes)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from envd.clock import Clock
from envd.errors import EnvdError, RequestTooLargeError, StaleLeaseError
from envd.progress import Stage

from .agent_registry import AgentRegistry, ConnectedAgent, RevokeLease
from .dispatcher import Dispatcher
from .jobs import JobLifecycle
from .settings import CoordinatorSettings

log = logging.getLogger("envd.daemon")


@dataclass(frozen=True, slots=True)
class Registration:
    agent_id: str
    host: str
    platforms: tuple[str, ...]
    slots: int
    held_lease_ids: tuple[str, ...]
    native_platform: str = ""
    build_pythons: tuple[str, ...] = ()


class AgentSessions:
    def __init__(
        self,
        *,
        jobs: JobLifecycle,
        registry: AgentRegistry,
        dispatcher: Dispatcher,
        clock: Clock,
        settings: CoordinatorSettings,
    ) -> None:
        self.jobs = jobs
        self.registry = registry
        self.dispatcher = dispatcher
        self.clock = clock
        self.settings = settings

    async def register(self, registration: Registration) -> ConnectedAgent:
        """A new session. Leases the agent still holds (it reconnected within the TTL) stay
        its own when still current; the others are revoked at once."""
        _check_lease_count(registration.held_lease_ids, self.settings)
        agent = ConnectedAgent(
            agent_id=registration.agent_id,
            host=registration.host,
            platforms=registration.platforms,
            slots=max(1, registration.slots),
            last_seen=self.clock.now(),
            native_platform=registration.native_platform,
            build_pythons=registration.build_pythons,
        )
        self.registry.add(agent)
        await self._renew(agent, registration.held_lease_ids)
        log.info(
            "agent=%s host=%s connected, platforms=%s, native=%s builds for python %s, kept %d "
            "lease(s)", agent.agent_id, agent.host, list(agent.platforms),
            agent.native_platform or "?", list(agent.build_pythons), len(agent.leases),
        )  # fmt: skip
        self.dispatcher.kick()
        return agent

    def disconnected(self, agent: ConnectedAgent) -> None:
        """A closed stream: the agent's leases run until their TTL, so an agent that
        reconnects in time keeps its work; the sweep re-queues them otherwise."""
        self.registry.remove(agent)
        if agent.leases:
            log.warning(
                "agent=%s disconnected holding %d lease(s); they expire in %g s unless it "
                "reconnects", agent.agent_id, len(agent.leases), self.settings.lease_ttl,
            )  # fmt: skip
        else:
            log.info("agent=%s disconnected", agent.agent_id)

    async def heartbeat(self, agent: ConnectedAgent, lease_ids: Sequence[str]) -> None:
        _check_lease_count(lease_ids, self.settings)
        now = self.clock.now()
        revived = not agent.live(now, self.settings.lease_ttl)
        agent.last_seen = now
        await self._renew(agent, lease_ids)
        if revived:
            self.dispatcher.kick()

    async def _renew(self, agent: ConnectedAgent, lease_ids: Sequence[str]) -> None:
        if not lease_ids:
            return
        renewed = await self.jobs.renew(lease_ids, agent.agent_id)
        for lease_id in dict.fromkeys(lease_ids):
            if lease_id in renewed:
                self.registry.hold(agent, lease_id)
            elif await self.jobs.state.by_lease(lease_id) is None:
                # (a lease in completion is not renewed, yet still current: left be)
                agent.leases.discard(lease_id)
                agent.send(RevokeLease(lease_id, "lease expired or job finished"))

    async def progress(
        self, agent: ConnectedAgent, lease_id: str, stage: Stage, message: str
    ) -> None:
        if lease_id in agent.leases:
            await self.jobs.progress(lease_id, stage, message, agent.agent_id)

    async def result(self, agent: ConnectedAgent, lease_id: str, full_id: str) -> None:
        """Accept the result only under a current lease held by this session (fencing)."""
        self.registry.release(lease_id)
        try:
            await self.jobs.complete(lease_id, full_id, agent.agent_id)
        except StaleLeaseError as err:
            agent.send(RevokeLease(lease_id, err.message))
        finally:
            self.dispatcher.kick()

    async def failure(self, agent: ConnectedAgent, lease_id: str, error: EnvdError) -> None:
        self.registry.release(lease_id)
        job = await self.jobs.state.by_lease(lease_id)
        try:
            if job is None:
                raise StaleLeaseError(f"lease `{lease_id}` is no longer valid")
            await self.jobs.fail(job, error, lease_id)
        except StaleLeaseError as err:
            log.warning("ignored failure from agent=%s: %s", agent.agent_id, err.message)
        finally:
            self.dispatcher.kick()

    async def release(
        self, agent: ConnectedAgent, lease_id: str, reason: str,
        native_builds: Sequence[str] = (), native_python: str | None = None,
    ) -> None:  # fmt: skip
        """The agent gives the job back unfinished. Stopping: queue it again now, and lease
        this session nothing new. With `native_builds` (packages to build on an agent native
        to the job's platform, which this one is not, or one without `native_python`): queue
        it for a native agent that builds for that python only."""
        agent.draining = agent.draining or not native_builds
        self.registry.release(lease_id)
        job = await self.jobs.state.by_lease(lease_id)
        if job is not None:
            await self.jobs.requeue(
                job, f"agent `{agent.agent_id}` released it: {reason}", lease_id=lease_id,
                native_build=", ".join(native_builds) or None,
                native_python=native_python if native_builds else None,
                native_pythons=self.registry.native_pythons(
                    job.platform, self.clock.now(), self.settings.lease_ttl
                ),
            )  # fmt: skip
        self.dispatcher.kick()


def _check_lease_count(lease_ids: Sequence[str], settings: CoordinatorSettings) -> None:
    if len(lease_ids) > settings.max_heartbeat_leases:
        raise RequestTooLargeError(
            f"{len(lease_ids)} lease ids in one message; the limit is "
            f"{settings.max_heartbeat_leases}",
            hint="an agent holds at most as many leases as it has slots",
        )
