"""Hands queued jobs to live agents under leases, and sweeps expired leases and jobs that no
agent serving their platform came for."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from envd.clock import Clock
from envd.errors import (
    EnvdError,
    JobAttemptsExceededError,
    NoAgentForPlatformError,
    StaleLeaseError,
)

from .agent_registry import AgentRegistry, AssignJob, ConnectedAgent, RevokeLease
from .jobs import JobLifecycle, JobTransitionError, native_waiting_message
from .settings import CoordinatorSettings
from .state import Job

log = logging.getLogger("envd.daemon")
# queued jobs read per lease attempt: the first nearly always leases (one event loop)
_CANDIDATES = 4


class Dispatcher:
    def __init__(
        self,
        *,
        jobs: JobLifecycle,
        registry: AgentRegistry,
        clock: Clock,
        settings: CoordinatorSettings,
    ) -> None:
        self.jobs = jobs
        self.registry = registry
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
                await self.sweep()
                await self.dispatch()
            except Exception:  # the loop must survive one bad round; the next one retries
                log.exception("dispatch round failed")

    async def dispatch(self) -> None:
        now = self.clock.now()
        for agent in self.registry.all():
            if not agent.live(now, self.settings.lease_ttl):
                continue
            while agent.free_slots() > 0:
                if await self._lease_next(agent) is None:
                    break

    async def _lease_next(self, agent: ConnectedAgent) -> Job | None:
        candidates = await self.jobs.state.queued(
            agent.platforms, _CANDIDATES, agent.native_platform or None, agent.build_pythons
        )
        for candidate in candidates:
            if not self.registry.connected(agent) or agent.free_slots() == 0:
                return None  # it left or began draining while we read the queue
            job = await self.jobs.lease(candidate.job_id, agent.agent_id)
            if job is None or job.lease_id is None:
                continue
            if not self.registry.connected(agent) or agent.draining:
                await self.jobs.requeue(job, f"agent `{agent.agent_id}` left before its "
                                        "assignment", lease_id=job.lease_id)  # fmt: skip
                return None
            self.registry.hold(agent, job.lease_id)
            agent.send(AssignJob(job))
            return job
        return None

    async def sweep(self) -> None:
        """Expire silent leases (queue the job again, revoke the lease) and fail jobs no
        agent serving their platform came for within the no-agent timeout."""
        for job in await self.jobs.expired():
            await self.revoke(job, self._expiry_reason(job))
        now = self.clock.now()
        timeout = self.settings.no_agent_timeout
        for job in await self.jobs.state.queued_before(now - timeout):
            if job.native_build is not None:
                pythons = self.registry.native_pythons(job.platform, now, self.settings.lease_ttl)
                if pythons is not None and (job.native_python is None
                                            or job.native_python in pythons):  # fmt: skip
                    continue
                err = _no_native_agent(job, pythons, timeout)
            elif self.registry.serving_count(job.platform, now, self.settings.lease_ttl):
                continue
            else:
                err = NoAgentForPlatformError(
                    f"no agent serving `{job.platform}` connected within {timeout:g} s",
                    hint=f"start one with `envd-agent --coordinator ADDR --platform "
                    f"{job.platform}`",
                )
            try:
                await self.jobs.fail(job, err)
            except JobTransitionError:
                continue  # another replica's sweep failed it first (and told its waiters)

    def _expiry_reason(self, job: Job) -> str:
        ttl = self.settings.lease_ttl
        if job.lease_id is not None and self.registry.holder_of(job.lease_id) is None:
            return f"agent `{job.agent_id}` disconnected and did not come back within {ttl:g} s"
        return f"lease of agent `{job.agent_id}` expired (no heartbeat for {ttl:g} s)"

    async def revoke(self, job: Job, reason: str) -> None:
        """Queue the job again (or fail it, once its leases ended without a result
        `max_attempts` times: a poison job must not starve the others) and tell the lease
        holder, if connected, to stop working on it."""
        if job.lease_id is None:
            return
        if job.attempts >= self.settings.max_attempts:
            err = JobAttemptsExceededError(
                f"job `{job.job_id}` failed after {job.attempts} attempts; the last: {reason}",
                hint="the agents serving the platform may crash or stall on this request; "
                "check their logs",
            )
            try:
                await self.jobs.fail(job, err, job.lease_id)
            except StaleLeaseError:
                return
        elif await self.jobs.requeue(job, reason, lease_id=job.lease_id) is None:
            return
        holder = self.registry.release(job.lease_id)
        if holder is not None:
            holder.send(RevokeLease(job.lease_id, reason))
        self.kick()


def _no_native_agent(job: Job, pythons: frozenset[str] | None, timeout: float) -> EnvdError:
    """No agent native to the job's platform came within the timeout; or some did, and none
    builds for the python the job needs: then the error names the versions they build for."""
    waiting = native_waiting_message(replace(job, native_python=None), None)
    if pythons is None or job.native_python is None:
        return NoAgentForPlatformError(
            f"{waiting}: none connected within {timeout:g} s",
            hint=f"start `envd-agent --coordinator ADDR` on a `{job.platform}` machine "
            "(its native platform is detected), or pin versions that publish wheels",
        )
    python = job.native_python
    can = ", ".join(sorted(pythons, key=_version_key)) or "no python"
    resolve_for = f", or resolve for python {can}" if pythons else ""
    return NoAgentForPlatformError(
        f"{waiting}: no agent connected within {timeout:g} s builds for python {python}; "
        f"connected {job.platform} agents build for {can}",
        hint=f"start `envd-agent --coordinator ADDR --build-python /path/to/python{python}` on "
        f"a `{job.platform}` machine{resolve_for}",
    )


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())
