"""The job lifecycle: every transition of a job, each one state write + one event + one log
line + one hook call. Servicers, the dispatcher and agent sessions only call it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, Protocol

from envd.catalog import Catalog
from envd.clock import Clock
from envd.errors import (
    EnvdError,
    InternalError,
    JobCancelledError,
    StaleLeaseError,
    StoreError,
    error_to_dict,
)
from envd.progress import Outcome, ResolveEvent, Stage

from .job_events import JobEvents, job_event
from .settings import CoordinatorSettings
from .state import Job, JobState, NewJob

log = logging.getLogger("envd.daemon")


class Transition(StrEnum):
    CREATED = "created"
    ATTACHED = "attached"
    LEASED = "leased"
    RENEWED = "renewed"
    COMPLETING = "completing"
    COMPLETED = "completed"
    FAILED = "failed"
    REQUEUED = "requeued"
    CANCELLED = "cancelled"
    REJECTED = "rejected"  # a result or failure under a lease that is no longer current
    EXPIRED = "expired"  # the sweep found the lease run out (no write; requeue or failure next)


class JobHook(Protocol):
    """Called once per transition, after its state write (metrics hang here). Must not block
    or raise."""

    def __call__(self, transition: Transition, job: Job, /) -> None: ...


def no_hook(transition: Transition, job: Job, /) -> None:
    pass


class JobTransitionError(InternalError):
    """A transition the job's current status does not allow (a bug in the caller)."""


class JobLifecycle:
    def __init__(
        self,
        *,
        state: JobState,
        events: JobEvents,
        catalog: Catalog,
        clock: Clock,
        settings: CoordinatorSettings,
        hook: JobHook = no_hook,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.state = state
        self.events = events
        self.catalog = catalog
        self.clock = clock
        self.settings = settings
        self.hook = hook
        self._sleep = sleep

    def _emit(
        self, transition: Transition, job: Job, event: ResolveEvent | None, line: str,
        *args: Any, level: int = logging.INFO,
    ) -> None:  # fmt: skip
        if event is not None:
            self.events.publish(event)
        log.log(level, line, *args)
        self.hook(transition, job)

    async def create_or_attach(self, new: NewJob) -> tuple[Job, bool]:
        """A new queued job for the request, or the one in flight for it (single-flight)."""
        job, created = await self.state.create_or_attach(new, self.clock.now())
        if created:
            self._emit(Transition.CREATED, job, None, "new job=%s req_id=%s platform=%s",
                       job.job_id, job.req_id, job.platform)  # fmt: skip
        else:
            self._emit(Transition.ATTACHED, job, None, "joined job=%s req_id=%s platform=%s",
                       job.job_id, job.req_id, job.platform, level=logging.DEBUG)  # fmt: skip
        return job, created

    async def lease(self, job_id: str, agent_id: str) -> Job | None:
        """queued → leased to `agent_id`; None if another dispatch took it first."""
        expires = self.clock.now() + self.settings.lease_ttl
        job = await self.state.lease(job_id, agent_id, expires)
        if job is None:
            return None
        event = job_event(job, Stage.LEASED, message=f"leased by agent `{agent_id}`",
                          agent=agent_id)  # fmt: skip
        self._emit(Transition.LEASED, job, event,
                   "leased job=%s req_id=%s platform=%s to agent=%s lease=%s attempt=%d",
                   job.job_id, job.req_id, job.platform, agent_id, job.lease_id,
                   job.attempts)  # fmt: skip
        return job

    async def renew(self, lease_ids: Sequence[str], agent_id: str) -> set[str]:
        """Extend the current leases among `lease_ids`; returns those renewed."""
        renewed = await self.state.renew(lease_ids, self.clock.now() + self.settings.lease_ttl)
        if renewed:
            log.debug("agent=%s renewed %d lease(s)", agent_id, len(renewed))
        return renewed

    async def progress(self, lease_id: str, stage: Stage, message: str, agent_id: str) -> None:
        """An agent's progress on a job it holds; never a terminal event (only the coordinator
        ends a job, after checking what the agent claims)."""
        if stage.terminal or stage in (Stage.ACCEPTED, Stage.QUEUED):
            log.warning("agent=%s sent progress stage `%s`: ignored", agent_id, stage)
            return
        job = await self.state.by_lease(lease_id)
        if job is None:
            return
        self.events.publish(job_event(job, stage, message=message, agent=agent_id))

    async def complete(self, lease_id: str, full_id: str, agent_id: str) -> Job:
        """The agent's result: fenced (the lease must be current and unexpired when the result
        is accepted; from then on the sweep leaves the job alone), then the default pointer
        moves and the job ends. Transient store errors are retried until
        `completion_timeout`, then the job is queued again; a bad description fails it."""
        job = await self.state.begin_completion(lease_id, full_id, self.clock.now())
        if job is None:
            err = StaleLeaseError(
                f"lease `{lease_id}` is no longer valid: it expired and its job was queued "
                "again, or the job ended",
                hint="the job is finished by whichever agent holds its current lease",
            )
            log.warning("rejected late result from agent=%s lease=%s full_id=%s",
                        agent_id, lease_id, full_id)  # fmt: skip
            raise err
        self._emit(Transition.COMPLETING, job, None, "completing job=%s full_id=%s agent=%s",
                   job.job_id, full_id, agent_id, level=logging.DEBUG)  # fmt: skip
        return await self.finish_completion(job, agent_id)

    async def finish_completion(self, job: Job, agent_id: str = "") -> Job:
        """Move the default pointer of a completing job and end it (also after a restart)."""
        assert job.full_id is not None
        deadline = self.clock.now() + self.settings.completion_timeout
        delay = 0.1
        while True:
            try:
                description = await asyncio.to_thread(
                    self.catalog.read_description, job.req_id, job.platform, job.full_id
                )
                await asyncio.to_thread(
                    self.catalog.set_default, job.req_id, job.platform, job.full_id,
                    description["resolved_at"],
                )  # fmt: skip
                break
            except StoreError as err:
                if not _transient(err):
                    return await self._fail(job, err, None)
                if self.clock.now() + delay > deadline:
                    requeued = await self.requeue(
                        job, f"the store failed while completing: {err.message}"
                    )
                    return requeued or job
                log.warning("job=%s: store error while completing, retrying: %s",
                            job.job_id, err.message)  # fmt: skip
                await self._sleep(delay)
                delay = min(delay * 2, 2.0)
            except EnvdError as err:
                return await self._fail(job, err, None)
        done = await self.state.complete(job.job_id, job.full_id)
        if done is None:
            raise JobTransitionError(f"job `{job.job_id}` left `completing` while completing")
        event = job_event(done, Stage.DONE, outcome=Outcome.RESOLVED, full_id=done.full_id or "",
                          description=description, agent=agent_id)  # fmt: skip
        self._emit(Transition.COMPLETED, done, event,
                   "resolved job=%s req_id=%s platform=%s full_id=%s agent=%s",
                   done.job_id, done.req_id, done.platform, done.full_id, agent_id)  # fmt: skip
        return done

    async def fail(self, job: Job, err: EnvdError, lease_id: str | None = None) -> Job:
        """in flight → failed. With `lease_id` (an agent's report), only under that lease:
        StaleLeaseError otherwise."""
        return await self._fail(job, err, lease_id)

    async def _fail(self, job: Job, err: EnvdError, lease_id: str | None) -> Job:
        failed = await self.state.fail(job.job_id, error_to_dict(err), lease_id)
        if failed is None:
            if lease_id is not None:
                self.hook(Transition.REJECTED, job)
                raise StaleLeaseError(f"lease `{lease_id}` is no longer valid")
            raise JobTransitionError(f"job `{job.job_id}` is not in flight: cannot fail it")
        event = job_event(failed, Stage.FAILED, outcome=Outcome.FAILED, error=err)
        self._emit(Transition.FAILED, failed, event, "failed job=%s platform=%s: %s (%s)",
                   failed.job_id, failed.platform, err.message, err.reference,
                   level=logging.WARNING)  # fmt: skip
        return failed

    async def requeue(
        self, job: Job, reason: str, lease_id: str | None = None,
        native_build: str | None = None, native_python: str | None = None,
        native_pythons: frozenset[str] | None = None,
    ) -> Job | None:  # fmt: skip
        """leased/completing → queued again; None when the job had moved on (or, with
        `lease_id`, that lease is no longer current). With `native_build` (what needs building,
        "crcmod 1.7 (sdist only)"), only an agent native to the job's platform (that builds for
        `native_python`, "3.12", if given) may lease it from now on; its status says what it
        waits for (`native_pythons`: what the connected native agents build for, None if none
        is connected)."""
        queued = await self.state.requeue(
            job.job_id, self.clock.now(), lease_id, native_build, native_python
        )
        if queued is None:
            return None
        message = (f"{reason}; queued again" if native_build is None
                   else native_waiting_message(queued, native_pythons))  # fmt: skip
        event = job_event(queued, Stage.QUEUED, message=message)
        self._emit(Transition.REQUEUED, queued, event, "requeued job=%s lease=%s: %s",
                   job.job_id, job.lease_id, reason, level=logging.WARNING)  # fmt: skip
        return queued

    async def cancel(self, job_id: str, reason: str) -> Job:
        """in flight → cancelled; JobTransitionError when it already ended."""
        err = JobCancelledError(f"job `{job_id}` was cancelled: {reason}")
        cancelled = await self.state.cancel(job_id, error_to_dict(err))
        if cancelled is None:
            job = await self.state.get(job_id)
            raise JobTransitionError(f"job `{job_id}` is already {job.status}: cannot cancel it")
        event = job_event(cancelled, Stage.FAILED, outcome=Outcome.FAILED, error=err)
        self._emit(Transition.CANCELLED, cancelled, event, "cancelled job=%s: %s",
                   job_id, reason, level=logging.WARNING)  # fmt: skip
        return cancelled

    async def expired(self) -> list[Job]:
        """Leased jobs whose lease ran out (completing ones never are); the hook hears of each."""
        jobs = await self.state.expired(self.clock.now())
        for job in jobs:
            self.hook(Transition.EXPIRED, job)
        return jobs


def native_waiting_message(job: Job, native_pythons: frozenset[str] | None) -> str:
    """The status of a job queued for a native build: "waiting for an osx-arm64 agent to build
    crcmod 1.7 (sdist only)"; "… agent with python 3.12 to build …" when native agents are
    connected (`native_pythons`: what they build for) but none builds for the job's python."""
    article = "an" if job.platform[:1] in "aeiou" else "a"
    python = job.native_python
    need = (f" with python {python}" if python is not None and native_pythons is not None
            and python not in native_pythons else "")  # fmt: skip
    return f"waiting for {article} {job.platform} agent{need} to build {job.native_build}"


def _transient(err: StoreError) -> bool:
    """A plain StoreError is what the backends raise after their own retries ran out on a
    transient failure; its subclasses (corrupt, missing, bad key, precondition) are final."""
    return type(err) is StoreError
