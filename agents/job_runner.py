"""Runs one leased job: resolve, cache the archives, describe, write the description."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from envd.catalog import Catalog
from envd.clock import Clock
from envd.description import ResolvedBy, ResolvedPackage, build_description
from envd.errors import InternalError, PypiNotAvailableError, StageTimeoutError
from envd.ids import req_id as compute_req_id
from envd.progress import Stage
from envd.spec import EnvType, Spec, spec_from_canonical

from .archive_cache import ArchiveCache, CacheProgress, check_sources
from .locked_resolver import LockedResolver
from .metrics import AgentMetrics
from .native_build import NativeBuildNeeded
from .resolver import Resolver, ResolveRequest

log = logging.getLogger("envd.agent")
Progress = Callable[[Stage, str], Awaitable[None]]
DEFAULT_JOB_TIMEOUT = 3600.0  # resolve, archives and description together


@dataclass(frozen=True, slots=True)
class Assignment:
    job_id: str
    lease_id: str
    req_id: str
    platform: str
    canonical_spec: bytes
    no_archives: bool
    requester_user: str


@dataclass(slots=True)
class _Doing:
    """What a job is doing now, for the message of its deadline."""

    stage: str = "resolving"


class JobRunner:
    def __init__(
        self,
        *,
        resolver: Resolver,
        catalog: Catalog,
        archives: ArchiveCache,
        clock: Clock,
        agent_id: str,
        host: str,
        job_timeout: float = DEFAULT_JOB_TIMEOUT,
        pypi_resolver: Resolver | None = None,
        mixed_resolver: Resolver | None = None,
        metrics: AgentMetrics | None = None,
    ) -> None:
        self.resolver = resolver
        self.pypi_resolver = pypi_resolver
        self.mixed_resolver = mixed_resolver
        self.archives = archives
        self.catalog = catalog
        self.clock = clock
        self.agent_id = agent_id
        self.host = host
        self.job_timeout = job_timeout
        self.metrics = metrics
        self.locked_resolver: Resolver = LockedResolver()

    async def run(self, job: Assignment, progress: Progress) -> str:
        """Resolve the job's spec, cache its archives (unless `no_archives`), then store its
        description — in that order, so a description only names archives already stored;
        returns the full_id (the coordinator moves the default pointer after that).

        Within `job_timeout` (else `StageTimeoutError` naming the stage it was in). Cancelling
        the task at any await stops the solve and the downloads, removes the temp files before
        `CancelledError` leaves here, and writes no description — unless the cancellation comes
        while the description is being written: that one write ends (content-addressed, it
        moves no pointer)."""
        spec = spec_from_canonical(json.loads(job.canonical_spec))
        if compute_req_id(spec) != job.req_id:
            raise InternalError(
                f"job `{job.job_id}` carries a spec whose req_id is not `{job.req_id}`",
                hint="the coordinator and this agent normalize differently: run one envd release",
            )
        doing = _Doing()
        deadline = asyncio.timeout(self.job_timeout)
        started, outcome = time.perf_counter(), "failed"
        try:
            async with deadline:
                full_id = await self._run(job, spec, progress, doing)
            outcome = "resolved"
            return full_id
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except NativeBuildNeeded:
            outcome = "handed_back"  # to an agent native to the platform
            raise
        except TimeoutError as err:
            if not deadline.expired():
                raise
            raise StageTimeoutError(
                f"timed out running job `{job.job_id}` for `{job.platform}` while {doing.stage}: "
                f"not done within {self.job_timeout:g} s",
                hint="raise the agent's `--job-timeout` for very large environments",
            ) from err
        finally:
            if self.metrics is not None:
                self.metrics.built(job.platform, outcome, time.perf_counter() - started)

    async def _run(self, job: Assignment, spec: Spec, progress: Progress, doing: _Doing) -> str:
        doing_what = "taking the lock's packages" if spec.locked else "solving"
        await progress(Stage.RESOLVING, f"{doing_what} on agent `{self.agent_id}`")
        log.info("solve job=%s req_id=%s platform=%s", job.job_id, job.req_id, job.platform)
        started = time.perf_counter()
        resolution = await self.resolver_for(spec).resolve(ResolveRequest(spec, job.platform))
        if self.metrics is not None:
            self.metrics.solved(job.platform, time.perf_counter() - started)
        resolved_at = datetime.fromtimestamp(self.clock.now(), UTC)
        doing.stage = "caching archives"
        packages = await self._cache_archives(job, resolution.packages, progress)
        # validated once: by the catalog as it writes it (an invalid one is refused, unstored)
        description = build_description(
            req_id=job.req_id,
            platform=job.platform,
            spec=spec,
            packages=packages,
            resolved_at=resolved_at,
            resolved_by=ResolvedBy(user=job.requester_user, agent=self.agent_id, host=self.host),
            solver=resolution.solver,
            validate=False,
        )
        await progress(Stage.UPLOADING, f"writing description of {len(packages)} packages")
        doing.stage = "writing the description"
        await asyncio.to_thread(self.catalog.write_description, description)
        full_id: str = description["full_id"]
        log.info("resolved job=%s platform=%s full_id=%s", job.job_id, job.platform, full_id)
        return full_id

    def resolver_for(self, spec: Spec) -> Resolver:
        """The resolver of the spec's content: conda-only specs go to the conda resolver,
        PyPI-only ones to the PyPI resolver, mixed ones to the mixed resolver (conda, then
        PyPI around it); a lock to the locked resolver (nothing solved)."""
        if spec.locked:
            return self.locked_resolver
        kind = spec.env_type
        if kind is EnvType.CONDA_ONLY:
            return self.resolver
        chosen = self.pypi_resolver if kind is EnvType.PYPI_ONLY else self.mixed_resolver
        if chosen is not None:
            return chosen
        raise PypiNotAvailableError(
            f"failed to resolve a `{kind}` spec: agent `{self.agent_id}` has no "
            f"{'PyPI' if kind is EnvType.PYPI_ONLY else 'mixed conda + PyPI'} resolver",
            hint="run an envd-agent of this release (`envd-agent` wires every resolver)",
        )

    async def _cache_archives(
        self, job: Assignment, packages: tuple[ResolvedPackage, ...], progress: Progress
    ) -> tuple[ResolvedPackage, ...]:
        if job.no_archives:
            check_sources(packages)  # nothing is fetched, and nothing outside a channel described
            log.info("job=%s asked for no archives: none fetched", job.job_id)
            return packages

        async def report(step: CacheProgress) -> None:
            await progress(Stage.UPLOADING, step.message())

        count = len(packages)
        await progress(Stage.UPLOADING, f"caching {count} archives")
        cached = await self.archives.cache(packages, report)
        log.info(
            "cached job=%s archives=%d uploaded=%d transmuted=%d reused=%d",
            job.job_id, count, cached.uploaded, cached.transmuted, cached.reused,
        )  # fmt: skip
        return cached.packages
