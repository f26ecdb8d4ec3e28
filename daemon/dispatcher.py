"""Hands queued jobs to live agents under leases, and expires leases whose heartbeats stopped."""

from __future__ import annotations

import asyncio
import logging

from envd.clock import Clock
from envd.errors import NoAgentForPlatformError, error_to_dict
from envd.progress import Outcome, Stage
from envd.v1 import agents_pb2, common_pb2

from .agent_registry import AgentRegistry, ConnectedAgent
from .job_events import JobEvents, job_event
from .settings import CoordinatorSettings
from .state import Job, JobState, JobStatus

log = logging.getLogger("envd.daemon")
# queued jobs read per lease attempt: the first nearly always leases (one event loop)
_CANDIDATES = 4


class Dispatcher:
    def __init__(
        self,
        *,
        state: JobState,
        registry: AgentRegistry,
        events: JobEvents,
        clock: Clock,
        settings: CoordinatorSettings,
    ) -> None:
        self.state = state
        self.registry = registry
        self.events = events
        self.clock = clock
        self.settings = settings
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="envd-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def kick(self) -> None:
        """Something changed (new job, agent, free slot): dispatch soon."""
        self._wakeup.set()

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.settings.sweep_interval)
            except TimeoutError:
                pass
            self._wakeup.clear()
            try:
                self.sweep()
                self.dispatch()
            except Exception:  # the loop must survive one bad round; the next one retries
                log.exception("dispatch round failed")

    def dispatch(self) -> None:
        now = self.clock.now()
        for agent in self.registry.all():
            if not agent.live(now, self.settings.lease_ttl):
                continue
            while agent.free_slots() > 0:
                job = self._lease_next(agent, now)
                if job is None:
                    break

    def _lease_next(self, agent: ConnectedAgent, now: float) -> Job | None:
        for candidate in self.state.queued(agent.platforms, limit=_CANDIDATES):
            job = self.state.lease(candidate.job_id, agent.agent_id, now + self.settings.lease_ttl)
            if job is None or job.lease_id is None:
                continue
            agent.leases.add(job.lease_id)
            agent.outbox.put_nowait(_assignment(job))
            log.info(
                "leased job=%s req_id=%s platform=%s to agent=%s lease=%s attempt=%d",
                job.job_id, job.req_id, job.platform, agent.agent_id, job.lease_id, job.attempts,
            )  # fmt: skip
            self.events.publish(
                job.job_id,
                job_event(job, Stage.LEASED, message=f"leased by agent `{agent.agent_id}`",
                          agent=agent.agent_id),
            )  # fmt: skip
            return job
        return None

    def sweep(self) -> None:
        """Expire silent leases (queue the job again) and fail jobs no agent can ever take."""
        now = self.clock.now()
        for job in self.state.expired(now):
            self.requeue(job, f"lease of agent `{job.agent_id}` expired (no heartbeat)")
        timeout = self.settings.no_agent_timeout
        for job in self.state.queued_before(now - timeout):
            if self.registry.serving(job.platform, now, self.settings.lease_ttl):
                continue
            err = NoAgentForPlatformError(
                f"no agent serving `{job.platform}` connected within {timeout:g} s",
                hint=f"start one with `envd-agent --coordinator ADDR --platform {job.platform}`",
            )
            self.state.fail(job.job_id, error_to_dict(err))
            log.warning("failed job=%s: %s", job.job_id, err.message)
            self.events.publish(
                job.job_id,
                job_event(job, Stage.FAILED, outcome=Outcome.FAILED, error=err),
            )

    def requeue(self, job: Job, reason: str) -> None:
        holder = self.registry.holder_of(job.lease_id) if job.lease_id else None
        if holder is not None and job.lease_id is not None:
            holder.leases.discard(job.lease_id)
            holder.outbox.put_nowait(
                agents_pb2.CoordinatorMessage(
                    revoked=agents_pb2.LeaseRevoked(lease_id=job.lease_id, reason=reason)
                )
            )
        queued = self.state.requeue(job.job_id, self.clock.now())
        log.warning("requeued job=%s lease=%s: %s", job.job_id, job.lease_id, reason)
        self.events.publish(
            job.job_id,
            job_event(job, Stage.QUEUED, message=f"{reason}; queued again"),
        )
        if queued.status is JobStatus.QUEUED:
            self.kick()


def _assignment(job: Job) -> agents_pb2.CoordinatorMessage:
    return agents_pb2.CoordinatorMessage(
        assignment=agents_pb2.JobAssignment(
            job_id=job.job_id,
            lease_id=job.lease_id or "",
            req_id=job.req_id,
            platform=job.platform,
            canonical_spec=job.canonical_spec,
            no_archives=job.no_archives,
            requester=common_pb2.Requester(
                user=job.requester.get("user", ""), host=job.requester.get("host", "")
            ),
        )
    )
