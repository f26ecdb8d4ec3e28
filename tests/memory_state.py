"""`JobState` in a dict, for fast tests of the lifecycle (no file, no thread). It runs the same
conformance suite as the real stores, so what the table tests learn from it holds for them."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import replace

from envd.daemon.state import FINISHED, IN_FLIGHT, Job, JobStatus, NewJob
from envd.errors import JobNotFoundError


class MemoryJobState:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self.closed = False

    def _new_id(self) -> str:
        return f"{next(self._ids):06d}"

    async def create_or_attach(self, new: NewJob, now: float) -> tuple[Job, bool]:
        found = [
            j for j in self.jobs.values()
            if (j.req_id, j.platform) == (new.req_id, new.platform) and j.status in IN_FLIGHT
            and (j.no_archives is False or new.no_archives)
        ]  # fmt: skip
        if found:
            return min(found, key=lambda j: j.no_archives), False
        job = Job(
            job_id=f"job-{self._new_id()}", req_id=new.req_id, platform=new.platform,
            canonical_spec=new.canonical_spec, no_archives=new.no_archives,
            requester=dict(new.requester), status=JobStatus.QUEUED, lease_id=None, agent_id=None,
            lease_expires_at=None, attempts=0, full_id=None, error=None, created_at=now,
            queued_at=now,
        )  # fmt: skip
        self.jobs[job.job_id] = job
        return job, True

    async def get(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            raise JobNotFoundError(f"no job `{job_id}` on this coordinator")
        return self.jobs[job_id]

    async def queued(
        self, platforms: Sequence[str], limit: int, native_platform: str | None = None,
        build_pythons: Sequence[str] = (),
    ) -> list[Job]:  # fmt: skip
        found = [j for j in self.jobs.values() if j.status is JobStatus.QUEUED
                 and j.platform in platforms
                 and (j.native_build is None or (j.platform == native_platform and (
                     j.native_python is None or j.native_python in build_pythons)))]  # fmt: skip
        return sorted(found, key=lambda j: j.created_at)[:limit]

    async def queued_before(self, cutoff: float) -> list[Job]:
        return [j for j in self.jobs.values()
                if j.status is JobStatus.QUEUED and j.queued_at <= cutoff]  # fmt: skip

    def _set(self, job: Job, **changes: object) -> Job:
        updated = replace(job, **changes)  # type: ignore[arg-type]
        self.jobs[job.job_id] = updated
        return updated

    async def lease(self, job_id: str, agent_id: str, expires_at: float) -> Job | None:
        job = self.jobs.get(job_id)
        if job is None or job.status is not JobStatus.QUEUED:
            return None
        return self._set(job, status=JobStatus.LEASED, lease_id=f"lease-{self._new_id()}",
                         agent_id=agent_id, lease_expires_at=expires_at,
                         attempts=job.attempts + 1)  # fmt: skip

    def _current(self, lease_id: str, *statuses: JobStatus) -> Job | None:
        for job in self.jobs.values():
            if job.lease_id == lease_id and job.status in statuses:
                return job
        return None

    async def renew(self, lease_ids: Sequence[str], expires_at: float) -> set[str]:
        renewed = set()
        for lease_id in lease_ids:
            job = self._current(lease_id, JobStatus.LEASED)
            if job is not None:
                self._set(job, lease_expires_at=expires_at)
                renewed.add(lease_id)
        return renewed

    async def by_lease(self, lease_id: str) -> Job | None:
        return self._current(lease_id, *IN_FLIGHT)

    async def begin_completion(self, lease_id: str, full_id: str, now: float) -> Job | None:
        job = self._current(lease_id, JobStatus.LEASED)
        if job is None or job.lease_expires_at is None or job.lease_expires_at < now:
            return None
        return self._set(job, status=JobStatus.COMPLETING, full_id=full_id)

    async def complete(self, job_id: str, full_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        if job is None or job.status is not JobStatus.COMPLETING:
            return None
        return self._set(job, status=JobStatus.DONE, full_id=full_id, lease_id=None)

    async def fail(
        self, job_id: str, error: dict[str, str], lease_id: str | None = None
    ) -> Job | None:
        job = self.jobs.get(job_id)
        if job is None or job.status not in IN_FLIGHT:
            return None
        if lease_id is not None and (
            job.lease_id != lease_id or job.status is not JobStatus.LEASED
        ):
            return None
        return self._set(job, status=JobStatus.FAILED, error=json.loads(json.dumps(error)),
                         lease_id=None)  # fmt: skip

    async def requeue(
        self, job_id: str, now: float, lease_id: str | None = None,
        native_build: str | None = None, native_python: str | None = None,
    ) -> Job | None:  # fmt: skip
        job = self.jobs.get(job_id)
        if job is None or job.status not in (JobStatus.LEASED, JobStatus.COMPLETING):
            return None
        if lease_id is not None and (
            job.lease_id != lease_id or job.status is not JobStatus.LEASED
        ):
            return None
        return self._set(job, status=JobStatus.QUEUED, lease_id=None, agent_id=None,
                         lease_expires_at=None, full_id=None, queued_at=now,
                         native_build=native_build or job.native_build,
                         native_python=native_python or job.native_python)  # fmt: skip

    async def cancel(self, job_id: str, error: dict[str, str]) -> Job | None:
        job = self.jobs.get(job_id)
        if job is None or job.status in FINISHED:
            return None
        return self._set(job, status=JobStatus.CANCELLED, error=dict(error), lease_id=None)

    async def expired(self, now: float) -> list[Job]:
        return [j for j in self.jobs.values() if j.status is JobStatus.LEASED
                and j.lease_expires_at is not None and j.lease_expires_at < now]  # fmt: skip

    async def completing(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.status is JobStatus.COMPLETING]

    async def recover_after_restart(self, expires_at: float, now: float, requeue: bool) -> int:
        affected = 0
        for job in list(self.jobs.values()):
            if job.status is JobStatus.QUEUED:
                self._set(job, queued_at=now)
            elif job.status is JobStatus.LEASED:
                affected += 1
                if requeue:
                    self._set(job, status=JobStatus.QUEUED, lease_id=None, agent_id=None,
                              lease_expires_at=None, queued_at=now)  # fmt: skip
                else:
                    self._set(job, lease_expires_at=expires_at)
        return affected

    async def close(self) -> None:
        self.closed = True
