"""The coordinator's client side: cache hits, single-flight jobs, and streams of job events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from envd.cache_hits import cache_hit, latest_hit
from envd.catalog import Catalog
from envd.channel_policy import spec_channels
from envd.clock import Clock
from envd.errors import (
    CoordinatorShuttingDownError,
    EnvdError,
    InternalError,
    error_from_dict,
)
from envd.ids import req_id as compute_req_id
from envd.platforms import check_platform
from envd.progress import Outcome, ResolveEvent, Stage
from envd.spec import Spec
from envd.use_latest import ANY, UseLatest, UseLatestMode

from .agent_registry import AgentRegistry
from .dispatcher import Dispatcher
from .job_events import job_event
from .jobs import JobLifecycle, native_waiting_message
from .settings import CoordinatorSettings
from .state import Job, JobStatus, NewJob

log = logging.getLogger("envd.daemon")


@dataclass(slots=True)
class _Attached:
    job: Job
    outcome: Outcome


class Coordinator:
    """Answers Resolve and Wait: a cache hit from the store, or one shared job per
    (req_id, platform) whose events fan out to every attached request."""

    def __init__(
        self,
        *,
        jobs: JobLifecycle,
        catalog: Catalog,
        clock: Clock,
        settings: CoordinatorSettings,
        registry: AgentRegistry,
        dispatcher: Dispatcher,
    ) -> None:
        self.jobs = jobs
        self.catalog = catalog
        self.clock = clock
        self.settings = settings
        self.registry = registry
        self.dispatcher = dispatcher
        self.stopping = asyncio.Event()

    async def resolve(
        self,
        spec: Spec,
        platforms: Sequence[str],
        *,
        force: bool,
        no_wait: bool,
        no_archives: bool,
        requester: dict[str, str],
        use_latest: UseLatest = ANY,
    ) -> AsyncIterator[ResolveEvent]:
        if self.stopping.is_set():
            raise CoordinatorShuttingDownError("the coordinator is shutting down")
        self.settings.channel_policy.check_locked(spec)  # an imported lock's every archive URL
        for channel in spec_channels(spec):
            self.settings.channel_policy.check(channel)
        self.settings.channel_policy.check_pypi_spec(spec)  # indexes, find-links, direct URLs
        targets = list(dict.fromkeys(check_platform(p) for p in platforms))
        rid = compute_req_id(spec)
        attached: dict[str, _Attached] = {}
        hits: list[ResolveEvent] = []
        for platform in targets:
            hit = None
            if not force:
                hit = await self._cache_hit(rid, platform, no_archives, use_latest, requester)
            if hit is not None:
                hits.append(hit)
                continue
            # serialized once per spec (a lock's job: once per platform, with its packages)
            new = NewJob(rid, platform, spec.job_bytes(platform), no_archives, requester)
            job, created = await self.jobs.create_or_attach(new)
            attached[job.job_id] = _Attached(job, Outcome.RESOLVED if created else Outcome.DEDUP)
        for hit in hits:
            yield hit
        for item in attached.values():
            yield job_event(item.job, Stage.ACCEPTED, outcome=item.outcome)
        if not attached:
            return
        self.dispatcher.kick()
        if no_wait:
            return
        async for event in self._follow(attached):
            yield event

    async def wait(self, job_ids: Sequence[str]) -> AsyncIterator[ResolveEvent]:
        attached = {j: _Attached(await self.jobs.state.get(j), Outcome.RESOLVED) for j in job_ids}
        for item in attached.values():
            yield job_event(item.job, Stage.ACCEPTED, outcome=item.outcome)
        async for event in self._follow(attached):
            yield event

    async def _cache_hit(
        self, rid: str, platform: str, no_archives: bool, use_latest: UseLatest,
        requester: dict[str, str],
    ) -> ResolveEvent | None:  # fmt: skip
        """The environment `use_latest` lets answer: the shared default, the newest one the
        caller (or listed users) resolved, or none (`none`: always resolve anew)."""
        if use_latest.shared:
            hit = await asyncio.to_thread(
                cache_hit, self.catalog, rid, platform, no_archives=no_archives
            )
        elif use_latest.mode is UseLatestMode.NONE:
            return None
        else:
            users = use_latest.resolvers(requester.get("user", ""))
            hit = await asyncio.to_thread(
                latest_hit, self.catalog, rid, platform, no_archives=no_archives, users=users
            )
        if hit is not None:
            log.debug("cache_hit req_id=%s platform=%s use_latest=%s", rid, platform, use_latest)
        return hit

    async def _follow(self, attached: dict[str, _Attached]) -> AsyncIterator[ResolveEvent]:
        """Stream events of the attached jobs until each has ended (or the coordinator stops:
        then the stream ends with UNAVAILABLE and the client re-attaches by job id)."""
        subscription = self.jobs.events.subscribe(set(attached))
        stopping = asyncio.ensure_future(self.stopping.wait())
        try:
            pending = set(attached)
            last: dict[str, tuple[Stage, str]] = {}
            for job_id in list(pending):
                job = await self.jobs.state.get(job_id)  # it may have ended before we subscribed
                if job.finished:
                    yield await self.terminal_event(job, attached[job_id].outcome)
                    pending.discard(job_id)
                else:
                    status = self.status_event(job)
                    last[job_id] = (status.stage, status.message)
                    yield status
            while pending:
                getting = asyncio.ensure_future(subscription.get())
                await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()
                    raise CoordinatorShuttingDownError(
                        "the coordinator is shutting down; re-attach to job(s) "
                        + ", ".join(f"`{j}`" for j in sorted(pending)),
                        hint="`envd-client wait " + " ".join(sorted(pending)) + "`",
                    )
                event = getting.result()
                if event.job_id not in pending or last.get(event.job_id) == (
                    event.stage,
                    event.message,
                ):
                    continue  # e.g. the lease seen on attach, then published again
                last[event.job_id] = (event.stage, event.message)
                if event.stage.terminal:
                    pending.discard(event.job_id)
                    if event.stage is Stage.DONE:
                        event = replace(event, outcome=attached[event.job_id].outcome)
                yield event
        finally:
            stopping.cancel()
            self.jobs.events.unsubscribe(subscription)

    def status_event(self, job: Job) -> ResolveEvent:
        """Where an unfinished job stands, in words a user can act on."""
        if job.status in (JobStatus.LEASED, JobStatus.COMPLETING):
            return job_event(job, Stage.LEASED, message=f"leased by agent `{job.agent_id}`")
        if job.native_build is not None:
            pythons = self.registry.native_pythons(
                job.platform, self.clock.now(), self.settings.lease_ttl
            )
            return job_event(job, Stage.QUEUED, message=native_waiting_message(job, pythons))
        agents = self.registry.serving_count(
            job.platform, self.clock.now(), self.settings.lease_ttl
        )
        if agents:
            message = f"queued for one of {agents} agent(s) serving `{job.platform}`"
        else:
            message = (
                f"waiting for an agent serving `{job.platform}` (fails after "
                f"{self.settings.no_agent_timeout:g} s)"
            )
        return job_event(job, Stage.QUEUED, message=message)

    async def terminal_event(self, job: Job, outcome: Outcome) -> ResolveEvent:
        if job.status is not JobStatus.DONE:
            return job_event(job, Stage.FAILED, outcome=Outcome.FAILED, error=_job_error(job))
        assert job.full_id is not None
        try:
            description = await asyncio.to_thread(
                self.catalog.read_description, job.req_id, job.platform, job.full_id
            )
        except EnvdError as err:
            return job_event(job, Stage.FAILED, outcome=Outcome.FAILED, error=err)
        return job_event(
            job, Stage.DONE, outcome=outcome, full_id=job.full_id, description=description
        )


def _job_error(job: Job) -> EnvdError:
    if job.error is None:
        return InternalError(f"job `{job.job_id}` failed without an error")
    return error_from_dict(job.error)
