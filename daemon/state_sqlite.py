"""`JobState` in one SQLite file (WAL, synchronous=FULL), driven from one dedicated thread."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from envd.errors import JobNotFoundError, StateError

from .state import IN_FLIGHT, Job, JobStatus, NewJob, job_from_row

T = TypeVar("T")
_IN_FLIGHT_SQL = "('queued', 'leased', 'completing')"
_SCHEMA = f"""
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
    queued_at REAL NOT NULL,
    native_build TEXT,
    native_python TEXT
);
-- single-flight: at most one in-flight job per (req_id, platform, archives or not); a request
-- without archives also attaches to a job that caches them (see create_or_attach)
DROP INDEX IF EXISTS jobs_in_flight;
DROP INDEX IF EXISTS jobs_in_flight_v2;
CREATE UNIQUE INDEX IF NOT EXISTS jobs_in_flight_v3
    ON jobs (req_id, platform, no_archives) WHERE status IN {_IN_FLIGHT_SQL};
CREATE UNIQUE INDEX IF NOT EXISTS jobs_lease ON jobs (lease_id) WHERE lease_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (status, platform, created_at);
"""
# bound on the lease ids renewed in one statement (SQLite's variable limit is 32766)
_RENEW_CHUNK = 500


class SqliteJobState:
    """Every call runs on one worker thread owning the connection: the event loop never waits
    on an fsync, and calls are serialized without a lock."""

    def __init__(self, path: Path, new_id: Callable[[], str]) -> None:
        self.path = path
        self._new_id = new_id
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="envd-state")
        try:
            self._db: sqlite3.Connection = self._executor.submit(self._open).result()
        except BaseException:
            self._executor.shutdown(wait=False)
            raise

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as err:
            raise StateError(
                f"failed to open the coordinator state `{self.path}`: {err}",
                hint="pass `--state` with a path the daemon can create and write",
            ) from err
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            columns = {r["name"] for r in db.execute("PRAGMA table_info(jobs)")}
            if "native_build" not in columns:  # a state written before native builds
                db.execute("ALTER TABLE jobs ADD COLUMN native_build TEXT")
            if "native_python" not in columns:  # a state written before routing by python
                db.execute("ALTER TABLE jobs ADD COLUMN native_python TEXT")
            db.execute("SELECT job_id, req_id, status, lease_id FROM jobs LIMIT 1").fetchall()
        except sqlite3.Error as err:
            db.close()
            raise StateError(
                f"failed to open the coordinator state `{self.path}`: {err}",
                hint="start with `--state` pointing elsewhere, or with `--recover` to move the "
                "damaged file aside and start afresh (resolved environments live in the store, "
                "not in the state; only jobs in flight are lost)",
            ) from err
        return db

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._guarded(fn))

    def _guarded(self, fn: Callable[[], T]) -> Callable[[], T]:
        def run() -> T:
            try:
                return fn()
            except sqlite3.Error as err:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise StateError(
                    f"failed to write the coordinator state `{self.path}`: {err}",
                    hint="free space on its filesystem, or move it with `--state`; jobs "
                    "already accepted are kept",
                ) from err

        return run

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._db.close)
        self._executor.shutdown(wait=True)

    async def create_or_attach(self, new: NewJob, now: float) -> tuple[Job, bool]:
        return await self._run(lambda: self._create_or_attach(new, now))

    def _create_or_attach(self, new: NewJob, now: float) -> tuple[Job, bool]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            # archives wanted: only a job that caches them will do; else any job will
            row = self._db.execute(
                f"SELECT * FROM jobs WHERE req_id=? AND platform=? AND status IN {_IN_FLIGHT_SQL}"
                " AND no_archives IN (0, ?) ORDER BY no_archives",
                (new.req_id, new.platform, int(new.no_archives)),
            ).fetchone()
            if row is not None:
                self._db.execute("COMMIT")
                return _job(row), False
            job_id = f"job-{self._new_id()}"
            self._db.execute(
                "INSERT INTO jobs (job_id, req_id, platform, canonical_spec, no_archives,"
                " requester, status, created_at, queued_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    job_id, new.req_id, new.platform, new.canonical_spec, int(new.no_archives),
                    json.dumps(new.requester), JobStatus.QUEUED, now, now,
                ),
            )  # fmt: skip
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        return self._get(job_id), True

    async def get(self, job_id: str) -> Job:
        return await self._run(lambda: self._get(job_id))

    def _get(self, job_id: str) -> Job:
        row = self._db.execute("SELECT * FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(
                f"no job `{job_id}` on this coordinator",
                hint="job ids come from `envd-client resolve --no-wait`",
            )
        return _job(row)

    async def queued(
        self, platforms: Sequence[str], limit: int, native_platform: str | None = None,
        build_pythons: Sequence[str] = (),
    ) -> list[Job]:  # fmt: skip
        marks = ",".join("?" * len(platforms)) or "''"
        pythons = ",".join("?" * len(build_pythons)) or "''"
        return await self._select(
            f"SELECT * FROM jobs WHERE status=? AND platform IN ({marks})"
            " AND (native_build IS NULL OR (platform IS ? AND (native_python IS NULL"
            f" OR native_python IN ({pythons})))) ORDER BY created_at LIMIT ?",
            (JobStatus.QUEUED, *platforms, native_platform, *build_pythons, limit),
        )

    async def queued_before(self, cutoff: float) -> list[Job]:
        return await self._select(
            "SELECT * FROM jobs WHERE status=? AND queued_at <= ?", (JobStatus.QUEUED, cutoff)
        )

    async def lease(self, job_id: str, agent_id: str, expires_at: float) -> Job | None:
        lease_id = f"lease-{self._new_id()}"
        return await self._update(
            job_id,
            "UPDATE jobs SET status=?, lease_id=?, agent_id=?, lease_expires_at=?,"
            " attempts=attempts+1 WHERE job_id=? AND status=?",
            (JobStatus.LEASED, lease_id, agent_id, expires_at, job_id, JobStatus.QUEUED),
        )

    async def renew(self, lease_ids: Sequence[str], expires_at: float) -> set[str]:
        return await self._run(lambda: self._renew(list(dict.fromkeys(lease_ids)), expires_at))

    def _renew(self, lease_ids: list[str], expires_at: float) -> set[str]:
        renewed: set[str] = set()
        for start in range(0, len(lease_ids), _RENEW_CHUNK):
            chunk = lease_ids[start : start + _RENEW_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"UPDATE jobs SET lease_expires_at=? WHERE status=? AND lease_id IN ({marks})"
                " RETURNING lease_id",
                (expires_at, JobStatus.LEASED, *chunk),
            ).fetchall()
            renewed.update(r["lease_id"] for r in rows)
        return renewed

    async def by_lease(self, lease_id: str) -> Job | None:
        found = await self._select(
            f"SELECT * FROM jobs WHERE lease_id=? AND status IN {_IN_FLIGHT_SQL}", (lease_id,)
        )
        return found[0] if found else None

    async def begin_completion(self, lease_id: str, full_id: str, now: float) -> Job | None:
        return await self._update_returning(
            "UPDATE jobs SET status=?, full_id=? WHERE lease_id=? AND status=?"
            " AND lease_expires_at >= ? RETURNING *",
            (JobStatus.COMPLETING, full_id, lease_id, JobStatus.LEASED, now),
        )

    async def complete(self, job_id: str, full_id: str) -> Job | None:
        return await self._update(
            job_id,
            "UPDATE jobs SET status=?, full_id=?, lease_id=NULL WHERE job_id=? AND status=?",
            (JobStatus.DONE, full_id, job_id, JobStatus.COMPLETING),
        )

    async def fail(
        self, job_id: str, error: dict[str, str], lease_id: str | None = None
    ) -> Job | None:
        # an agent's report (with its lease) counts only while it holds the job: not once its
        # result was accepted (completing)
        where = f"status IN {_IN_FLIGHT_SQL}" if lease_id is None else "status='leased'"
        fence = "" if lease_id is None else " AND lease_id=?"
        return await self._update(
            job_id,
            f"UPDATE jobs SET status=?, error=?, lease_id=NULL WHERE job_id=? AND {where}{fence}",
            (JobStatus.FAILED, json.dumps(error), job_id, *_opt(lease_id)),
        )

    async def requeue(
        self, job_id: str, now: float, lease_id: str | None = None,
        native_build: str | None = None, native_python: str | None = None,
    ) -> Job | None:  # fmt: skip
        where = "status IN ('leased', 'completing')" if lease_id is None else "status='leased'"
        fence = "" if lease_id is None else " AND lease_id=?"
        return await self._update(
            job_id,
            "UPDATE jobs SET status=?, lease_id=NULL, agent_id=NULL, lease_expires_at=NULL,"
            " full_id=NULL, queued_at=?, native_build=COALESCE(?, native_build),"
            " native_python=COALESCE(?, native_python)"
            f" WHERE job_id=? AND {where}{fence}",
            (JobStatus.QUEUED, now, native_build, native_python, job_id, *_opt(lease_id)),
        )

    async def cancel(self, job_id: str, error: dict[str, str]) -> Job | None:
        return await self._update(
            job_id,
            f"UPDATE jobs SET status=?, error=?, lease_id=NULL WHERE job_id=?"
            f" AND status IN {_IN_FLIGHT_SQL}",
            (JobStatus.CANCELLED, json.dumps(error), job_id),
        )

    async def expired(self, now: float) -> list[Job]:
        return await self._select(
            "SELECT * FROM jobs WHERE status=? AND lease_expires_at < ?", (JobStatus.LEASED, now)
        )

    async def completing(self) -> list[Job]:
        return await self._select("SELECT * FROM jobs WHERE status=?", (JobStatus.COMPLETING,))

    async def recover_after_restart(self, expires_at: float, now: float, requeue: bool) -> int:
        def run() -> int:
            self._db.execute("UPDATE jobs SET queued_at=? WHERE status=?", (now, JobStatus.QUEUED))
            if requeue:
                sql = (
                    "UPDATE jobs SET status='queued', lease_id=NULL, agent_id=NULL,"
                    " lease_expires_at=NULL, queued_at=? WHERE status=?"
                )
                return self._db.execute(sql, (now, JobStatus.LEASED)).rowcount
            sql = "UPDATE jobs SET lease_expires_at=? WHERE status=?"
            return self._db.execute(sql, (expires_at, JobStatus.LEASED)).rowcount

        return await self._run(run)

    async def _select(self, sql: str, args: Sequence[Any]) -> list[Job]:
        rows = await self._run(lambda: self._db.execute(sql, tuple(args)).fetchall())
        return [_job(r) for r in rows]

    async def _update(self, job_id: str, sql: str, args: Sequence[Any]) -> Job | None:
        """Run a conditional update of one job; the job as it now is, or None if unchanged."""

        def run() -> Job | None:
            changed = self._db.execute(sql, tuple(args)).rowcount
            return self._get(job_id) if changed else None

        return await self._run(run)

    async def _update_returning(self, sql: str, args: Sequence[Any]) -> Job | None:
        row = await self._run(lambda: self._db.execute(sql, tuple(args)).fetchone())
        return None if row is None else _job(row)


def move_aside(path: Path, now: float) -> Path:
    """`--recover`: keep a damaged state file (and its WAL) for inspection, out of the way."""
    target = path.with_name(f"{path.name}.damaged-{int(now)}")
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            source.rename(target.with_name(target.name + suffix))
    return target


def _opt(value: str | None) -> tuple[str, ...]:
    return () if value is None else (value,)


def _job(row: sqlite3.Row) -> Job:
    return job_from_row(row, json.loads)


assert set(IN_FLIGHT) == {JobStatus(s.strip(" '")) for s in _IN_FLIGHT_SQL[1:-1].split(",")}
