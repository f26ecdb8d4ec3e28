"""What the coordinator does with each message a connected agent sends."""

from __future__ import annotations

import asyncio
import logging

import envd
from envd.catalog import Catalog
from envd.clock import Clock
from envd.errors import (
    EnvdError,
    IncompatibleVersionError,
    StaleLeaseError,
    error_to_dict,
)
from envd.platforms import check_platform
from envd.progress import Outcome, Stage
from envd.v1 import agents_pb2
from envd.wire import error_from_pb, stage_from_pb

from .agent_registry import AgentRegistry, ConnectedAgent
from .dispatcher import Dispatcher
from .job_events import JobEvents, job_event
from .settings import CoordinatorSettings
from .state import Job, JobState

log = logging.getLogger("envd.daemon")


class AgentSessions:
    def __init__(
        self,
        *,
        state: JobState,
        catalog: Catalog,
        registry: AgentRegistry,
        events: JobEvents,
        dispatcher: Dispatcher,
        clock: Clock,
        settings: CoordinatorSettings,
    ) -> None:
        self.state = state
        self.catalog = catalog
        self.registry = registry
        self.events = events
        self.dispatcher = dispatcher
        self.clock = clock
        self.lease_ttl = settings.lease_ttl

    def register(self, message: agents_pb2.Register) -> ConnectedAgent:
        if message.protocol_version != envd.PROTOCOL_VERSION:
            raise IncompatibleVersionError(
                f"agent `{message.agent_id}` speaks protocol {message.protocol_version} "
                f"(envd {message.version}); this coordinator speaks {envd.PROTOCOL_VERSION} "
                f"(envd {envd.__version__})",
                hint="run the same envd release on the coordinator and its agents",
            )
        platforms = tuple(check_platform(p) for p in message.platforms)
        agent = ConnectedAgent(
            agent_id=message.agent_id,
            host=message.host,
            platforms=platforms,
            slots=max(1, message.slots),
            last_seen=self.clock.now(),
        )
        self.registry.add(agent)
        log.info("agent=%s host=%s connected, platforms=%s", agent.agent_id, agent.host, platforms)
        self.dispatcher.kick()
        return agent

    def disconnected(self, agent: ConnectedAgent) -> None:
        """A closed stream (agent killed, network gone) frees its jobs at once."""
        self.registry.remove(agent)
        log.warning("agent=%s disconnected holding %d lease(s)", agent.agent_id, len(agent.leases))
        for lease_id in list(agent.leases):
            try:
                job = self.state.by_lease(lease_id)
            except StaleLeaseError:
                continue
            self.dispatcher.requeue(job, f"agent `{agent.agent_id}` disconnected")
        agent.leases.clear()

    def heartbeat(self, agent: ConnectedAgent, message: agents_pb2.Heartbeat) -> None:
        now = self.clock.now()
        revived = not agent.live(now, self.lease_ttl)
        agent.last_seen = now
        for lease_id in message.lease_ids:
            if self.state.renew(lease_id, agent.agent_id, now + self.lease_ttl):
                agent.leases.add(lease_id)
            else:
                agent.leases.discard(lease_id)
                agent.outbox.put_nowait(_revoked(lease_id, "lease expired or job finished"))
        if revived:
            self.dispatcher.kick()

    def progress(self, agent: ConnectedAgent, message: agents_pb2.JobProgress) -> None:
        try:
            job = self.state.by_lease(message.lease_id)
        except StaleLeaseError:
            return
        self.events.publish(
            job.job_id,
            job_event(
                job, stage_from_pb(message.stage), message=message.message, agent=agent.agent_id
            ),
        )

    async def result(self, agent: ConnectedAgent, message: agents_pb2.JobResult) -> None:
        """Check the lease, read and validate the description, move the default, finish."""
        agent.leases.discard(message.lease_id)
        try:
            job = self.state.by_lease(message.lease_id)
            description = await asyncio.to_thread(
                self.catalog.read_description, job.req_id, job.platform, message.full_id
            )
            await asyncio.to_thread(
                self.catalog.set_default,
                job.req_id,
                job.platform,
                message.full_id,
                description["resolved_at"],
            )
            done = self.state.complete(message.lease_id, message.full_id)
        except StaleLeaseError as err:
            log.warning(
                "rejected late result from agent=%s lease=%s full_id=%s: %s",
                agent.agent_id, message.lease_id, message.full_id, err.message,
            )  # fmt: skip
            agent.outbox.put_nowait(_revoked(message.lease_id, err.message))
            return
        except EnvdError as err:
            self._fail(job, err, message.lease_id)
            return
        finally:
            self.dispatcher.kick()
        log.info(
            "resolved job=%s req_id=%s platform=%s full_id=%s by agent=%s",
            done.job_id, done.req_id, done.platform, done.full_id, agent.agent_id,
        )  # fmt: skip
        self.events.publish(
            done.job_id,
            job_event(done, Stage.DONE, full_id=message.full_id, description=description,
                   agent=agent.agent_id),
        )  # fmt: skip

    def failure(self, agent: ConnectedAgent, message: agents_pb2.JobFailure) -> None:
        agent.leases.discard(message.lease_id)
        try:
            job = self.state.by_lease(message.lease_id)
        except StaleLeaseError as err:
            log.warning("ignored failure from agent=%s: %s", agent.agent_id, err.message)
            return
        self._fail(job, error_from_pb(message.error), message.lease_id)
        self.dispatcher.kick()

    def _fail(self, job: Job, err: EnvdError, lease_id: str) -> None:
        self.state.fail(job.job_id, error_to_dict(err), lease_id)
        log.warning("failed job=%s platform=%s: %s", job.job_id, job.platform, err.message)
        self.events.publish(
            job.job_id, job_event(job, Stage.FAILED, outcome=Outcome.FAILED, error=err)
        )


def _revoked(lease_id: str, reason: str) -> agents_pb2.CoordinatorMessage:
    return agents_pb2.CoordinatorMessage(
        revoked=agents_pb2.LeaseRevoked(lease_id=lease_id, reason=reason)
    )
