"""Durable coordinator state: jobs, their leases and single-flight, in SQLite."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from envd.errors import JobNotFoundError, StaleLeaseError


class JobStatus(StrEnum):
    QUEUED = "queued"
    LEASED = "leased"
    DONE = "done"
    FAILED = "failed"


IN_FLIGHT = (JobStatus.QUEUED, JobStatus.LEASED)


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

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED)


class JobState(Protocol):
    """What the coordinator needs from its state store (SQLite now, PostgreSQL later)."""

    def create_or_attach(
        self,
        *,
        req_id: str,
        platform: str,
        canonical_spec: bytes,
        no_archives: bool,
        requester: dict[str, str],
        now: float,
    ) -> tuple[Job, bool]: ...
    def get(self, job_id: str) -> Job: ...
    def queued(self, platforms: Sequence[str], limit: int = -1) -> list[Job]: ...
    def queued_before(self, cutoff: float) -> list[Job]: ...
    def lease(self, job_id: str, agent_id: str, expires_at: float) -> Job | None: ...
    def by_lease(self, lease_id: str) -> Job: ...
    def renew(self, lease_id: str, agent_id: str, expires_at: float) -> bool: ...
    def complete(self, lease_id: str, full_id: str) -> Job: ...
    def fail(self, job_id: str, error: dict[str, str], lease_id: str | None = None) -> Job: ...
    def requeue(self, job_id: str, now: float) -> Job: ...
    def expired(self, now: float) -> list[Job]: ...
    def extend_leases_after_restart(self, expires_at: float, now: float) -> int: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    req_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    canonical_spec BLOB NOT NULL,
    no_archives INTEGER NOT NULL,
    requester TEXT NOT NULL,
    status TEXT NOT NULL,
    lease_id TEXT,
    agent_id TEXT,
    lease_expires_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    full_id TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    queued_at REAL NOT NULL
);
-- single-flight: at most one in-flight job per (req_id, platform, archives or not); a request
-- without archives also attaches to a job that caches them (see create_or_attach)
DROP INDEX IF EXISTS jobs_in_flight;
CREATE UNIQUE INDEX IF NOT EXISTS jobs_in_flight_v2
    ON jobs (req_id, platform, no_archives) WHERE status IN ('queued', 'leased');
CREATE UNIQUE INDEX IF NOT EXISTS jobs_lease ON jobs (lease_id) WHERE lease_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (status, platform, created_at);
"""


class SqliteJobState:
    """Jobs in one SQLite file (WAL). Every write commits before the caller acknowledges it."""

    def __init__(self, path: Path, new_id: Callable[[], str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._new_id = new_id

    def close(self) -> None:
        self._db.close()

    def create_or_attach(
        self,
        *,
        req_id: str,
        platform: str,
        canonical_spec: bytes,
        no_archives: bool,
        requester: dict[str, str],
        now: float,
    ) -> tuple[Job, bool]:
        """The in-flight job for (req_id, platform), or a new persisted one (created=True)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # archives wanted: only a job that caches them will do; else any job will
                row = self._db.execute(
                    "SELECT * FROM jobs WHERE req_id=? AND platform=? AND status IN (?, ?)"
                    " AND no_archives IN (0, ?) ORDER BY no_archives",
                    (req_id, platform, *IN_FLIGHT, int(no_archives)),
                ).fetchone()
                if row is not None:
                    self._db.execute("COMMIT")
                    return _job(row), False
                job_id = f"job-{self._new_id()}"
                self._db.execute(
                    "INSERT INTO jobs (job_id, req_id, platform, canonical_spec, no_archives,"
                    " requester, status, created_at, queued_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        job_id,
                        req_id,
                        platform,
                        canonical_spec,
                        int(no_archives),
                        json.dumps(requester),
                        JobStatus.QUEUED,
                        now,
                        now,
                    ),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(job_id), True

    def get(self, job_id: str) -> Job:
        row = self._one("SELECT * FROM jobs WHERE job_id=?", (job_id,))
        if row is None:
            raise JobNotFoundError(
                f"no job `{job_id}` on this coordinator",
                hint="job ids come from `envd-client resolve --no-wait`",
            )
        return _job(row)

    def queued(self, platforms: Sequence[str], limit: int = -1) -> list[Job]:
        """Queued jobs for these platforms, oldest first (at most `limit`; -1: all)."""
        marks = ",".join("?" * len(platforms)) or "''"
        rows = self._all(
            f"SELECT * FROM jobs WHERE status=? AND platform IN ({marks})"
            " ORDER BY created_at LIMIT ?",
            (JobStatus.QUEUED, *platforms, limit),
        )
        return [_job(r) for r in rows]

    def queued_before(self, cutoff: float) -> list[Job]:
        """Jobs queued (or queued again) at or before `cutoff`: the no-agent timeout's input."""
        rows = self._all(
            "SELECT * FROM jobs WHERE status=? AND queued_at <= ?", (JobStatus.QUEUED, cutoff)
        )
        return [_job(r) for r in rows]

    def lease(self, job_id: str, agent_id: str, expires_at: float) -> Job | None:
        """Lease a queued job to an agent; None if someone else got it first."""
        lease_id = f"lease-{self._new_id()}"
        changed = self._write(
            "UPDATE jobs SET status=?, lease_id=?, agent_id=?, lease_expires_at=?,"
            " attempts=attempts+1 WHERE job_id=? AND status=?",
            (JobStatus.LEASED, lease_id, agent_id, expires_at, job_id, JobStatus.QUEUED),
        )
        return self.get(job_id) if changed else None

    def renew(self, lease_id: str, agent_id: str, expires_at: float) -> bool:
        return bool(
            self._write(
                "UPDATE jobs SET lease_expires_at=?, agent_id=? WHERE lease_id=? AND status=?",
                (expires_at, agent_id, lease_id, JobStatus.LEASED),
            )
        )

    def complete(self, lease_id: str, full_id: str) -> Job:
        row = self.by_lease(lease_id)
        self._write(
            "UPDATE jobs SET status=?, full_id=?, lease_id=NULL WHERE job_id=? AND lease_id=?",
            (JobStatus.DONE, full_id, row.job_id, lease_id),
        )
        return self.get(row.job_id)

    def fail(self, job_id: str, error: dict[str, str], lease_id: str | None = None) -> Job:
        if lease_id is not None:
            self.by_lease(lease_id)
        self._write(
            "UPDATE jobs SET status=?, error=?, lease_id=NULL WHERE job_id=? AND status IN (?,?)",
            (JobStatus.FAILED, json.dumps(error), job_id, *IN_FLIGHT),
        )
        return self.get(job_id)

    def requeue(self, job_id: str, now: float) -> Job:
        self._write(
            "UPDATE jobs SET status=?, lease_id=NULL, agent_id=NULL, lease_expires_at=NULL,"
            " queued_at=? WHERE job_id=? AND status=?",
            (JobStatus.QUEUED, now, job_id, JobStatus.LEASED),
        )
        return self.get(job_id)

    def expired(self, now: float) -> list[Job]:
        rows = self._all(
            "SELECT * FROM jobs WHERE status=? AND lease_expires_at < ?", (JobStatus.LEASED, now)
        )
        return [_job(r) for r in rows]

    def extend_leases_after_restart(self, expires_at: float, now: float) -> int:
        """After a restart, give agents one TTL to reconnect and renew the leases they hold;
        queued jobs start their no-agent wait afresh."""
        self._write("UPDATE jobs SET queued_at=? WHERE status=?", (now, JobStatus.QUEUED))
        return self._write(
            "UPDATE jobs SET lease_expires_at=? WHERE status=?", (expires_at, JobStatus.LEASED)
        )

    def by_lease(self, lease_id: str) -> Job:
        """The job a lease is valid for; StaleLeaseError once it expired or finished."""
        row = self._one("SELECT * FROM jobs WHERE lease_id=? AND status=?", (lease_id, "leased"))
        if row is None:
            raise StaleLeaseError(
                f"lease `{lease_id}` is no longer valid: it expired and its job was queued again",
                hint="the job is finished by whichever agent holds its current lease",
            )
        return _job(row)

    def _one(self, sql: str, args: Sequence[Any]) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, tuple(args)).fetchone()
            return row

    def _all(self, sql: str, args: Sequence[Any]) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, tuple(args)).fetchall())

    def _write(self, sql: str, args: Sequence[Any]) -> int:
        with self._lock:
            return self._db.execute(sql, tuple(args)).rowcount


def _job(row: sqlite3.Row) -> Job:
    return Job(
        job_id=row["job_id"],
        req_id=row["req_id"],
        platform=row["platform"],
        canonical_spec=bytes(row["canonical_spec"]),
        no_archives=bool(row["no_archives"]),
        requester=json.loads(row["requester"]),
        status=JobStatus(row["status"]),
        lease_id=row["lease_id"],
        agent_id=row["agent_id"],
        lease_expires_at=row["lease_expires_at"],
        attempts=row["attempts"],
        full_id=row["full_id"],
        error=json.loads(row["error"]) if row["error"] else None,
        created_at=row["created_at"],
        queued_at=row["queued_at"],
    )
