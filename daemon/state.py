"""Durable coordinator state: the `Job` record and the `JobState` contract its stores keep."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class JobStatus(StrEnum):
    QUEUED = "queued"
    LEASED = "leased"
    # the agent reported a result under a valid lease; the coordinator is moving the default
    # pointer. The sweep leaves such jobs alone, so a lease can't expire mid-completion.
    COMPLETING = "completing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


IN_FLIGHT = (JobStatus.QUEUED, JobStatus.LEASED, JobStatus.COMPLETING)
FINISHED = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class Job:
    job_id: str
    req_id: str
    platform: str
    canonical_spec: bytes
    no_archives: bool
    requester: dict[str, str]
    status: JobStatus
    lease_id: str | None
    agent_id: str | None
    lease_expires_at: float | None
    attempts: int
    full_id: str | None
    error: dict[str, str] | None
    created_at: float
    queued_at: float
    # what the job needs built natively ("crcmod 1.7 (sdist only)"): set, the job is leased
    # only to an agent whose native platform is the job's platform. Kept once set.
    native_build: str | None = None
    # the python ("3.12") those builds need: the job is leased only to a native agent that
    # builds for it (None: any native agent). Kept once set, like `native_build`.
    native_python: str | None = None

    @property
    def finished(self) -> bool:
        return self.status.finished


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a request asks for: the single-flight key plus what an agent needs to run it."""

    req_id: str
    platform: str
    canonical_spec: bytes
    no_archives: bool
    requester: dict[str, str]


def job_from_row(row: Any, load: Callable[[Any], dict[str, str]]) -> Job:
    """A row of a state's `jobs` table (the same columns in every state) as a `Job`; `load`
    decodes the JSON columns as that state stores them."""
    return Job(
        job_id=row["job_id"],
        req_id=row["req_id"],
        platform=row["platform"],
        canonical_spec=bytes(row["canonical_spec"]),
        no_archives=bool(row["no_archives"]),
        requester=load(row["requester"]),
        status=JobStatus(row["status"]),
        lease_id=row["lease_id"],
        agent_id=row["agent_id"],
        lease_expires_at=row["lease_expires_at"],
        attempts=row["attempts"],
        full_id=row["full_id"],
        error=load(row["error"]) if row["error"] else None,
        created_at=row["created_at"],
        queued_at=row["queued_at"],
        native_build=row["native_build"],
        native_python=row["native_python"],
    )


class JobState(Protocol):
    """The coordinator's durable job table (SQLite for one coordinator, PostgreSQL for replicas).

    Owns: every job's status, lease and outcome. Promises:
    - a write has reached durable storage when its coroutine returns (jobs are persisted before
      a client hears `accepted`);
    - single-flight: at most one in-flight job per (req_id, platform, no_archives);
    - every conditional method changes a row only from the status it names and reports whether
      it did (None / False), so two callers racing on one job never both win;
    - a lease id is a fencing token: methods taking one act only while it is the job's lease;
    - calls never block the event loop. `close()` releases the store; no call follows it.
    """

    async def create_or_attach(self, new: NewJob, now: float) -> tuple[Job, bool]:
        """The in-flight job serving `new`, or a new queued one (created=True). A request
        without archives may attach to a job that caches them; never the other way round."""
        ...

    async def get(self, job_id: str) -> Job:
        """The job; JobNotFoundError if there is none."""
        ...

    async def queued(
        self, platforms: Sequence[str], limit: int, native_platform: str | None = None,
        build_pythons: Sequence[str] = (),
    ) -> list[Job]:  # fmt: skip
        """Queued jobs for any of `platforms`, oldest first, at most `limit`; a job marked
        native-only (`native_build`) only when its platform is `native_platform` and its
        `native_python`, if any, is one of `build_pythons`."""
        ...

    async def queued_before(self, cutoff: float) -> list[Job]:
        """Queued jobs waiting since `cutoff` or earlier (the no-agent timeout's input)."""
        ...

    async def lease(self, job_id: str, agent_id: str, expires_at: float) -> Job | None:
        """queued → leased under a new lease id; None if the job was not queued."""
        ...

    async def renew(self, lease_ids: Sequence[str], expires_at: float) -> set[str]:
        """Extend the leases still current (status leased); returns the ones renewed."""
        ...

    async def by_lease(self, lease_id: str) -> Job | None:
        """The in-flight job `lease_id` is current for (leased or completing), else None."""
        ...

    async def begin_completion(self, lease_id: str, full_id: str, now: float) -> Job | None:
        """leased → completing, only while the lease is current and not expired at `now`."""
        ...

    async def complete(self, job_id: str, full_id: str) -> Job | None:
        """completing → done with `full_id`."""
        ...

    async def fail(
        self, job_id: str, error: dict[str, str], lease_id: str | None = None
    ) -> Job | None:
        """in flight → failed; with `lease_id` (an agent's report), only while the job is
        leased under it (not once its result was accepted)."""
        ...

    async def requeue(
        self, job_id: str, now: float, lease_id: str | None = None,
        native_build: str | None = None, native_python: str | None = None,
    ) -> Job | None:  # fmt: skip
        """leased or completing → queued (lease dropped); with `lease_id`, only while the job
        is leased under it. With `native_build` (and `native_python`), the job is marked
        native-only (for that python) from now on (a requeue without them never clears the
        marks)."""
        ...

    async def cancel(self, job_id: str, error: dict[str, str]) -> Job | None:
        """in flight → cancelled."""
        ...

    async def expired(self, now: float) -> list[Job]:
        """Leased jobs whose lease ran out before `now` (completing jobs are never listed)."""
        ...

    async def completing(self) -> list[Job]:
        """Jobs left mid-completion (by a coordinator that stopped): the restart finishes them."""
        ...

    async def recover_after_restart(self, expires_at: float, now: float, requeue: bool) -> int:
        """After a restart: queued jobs wait afresh for agents; leased jobs get until
        `expires_at` for their agents to reconnect, or (requeue=True, when no agent of the
        previous run can be alive, as in the embedded default) are queued again at once.
        Returns the number of leased jobs affected."""
        ...

    async def close(self) -> None: ...
