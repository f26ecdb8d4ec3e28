"""`JobState` on PostgreSQL (psycopg 3, a connection pool): one table shared by replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from envd.errors import JobNotFoundError, StateError

from .state import IN_FLIGHT, Job, JobStatus, NewJob, job_from_row
from .state_postgres_schema import migrate

_IN_FLIGHT_SQL = "('queued', 'leased', 'completing')"
# a queued job wakes every replica's dispatcher (their agents may serve it)
QUEUED_CHANNEL = "envd_queued"
_QUEUED = f"pg_notify('{QUEUED_CHANNEL}', platform)"
_POOL_SIZE = 8
_Pool = AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]
_LIVE_REPLICAS = "SELECT replica_id FROM replicas WHERE expires_at >= now()"


def is_postgres_url(value: str) -> bool:
    return value.startswith(("postgresql://", "postgres://"))


def display_url(url: str) -> str:
    """The URL without its password or options, for messages and logs."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://…"
    host = str(parts.get("host", ""))
    port = f":{parts['port']}" if parts.get("port") else ""
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname', '')}"


class PostgresJobState:
    """Every call takes a pooled connection (autocommit: each statement commits durably on
    its own, or one explicit transaction). `replica_id` names this coordinator among the
    replicas: it marks the jobs it is completing, so another can finish them if it dies."""

    def __init__(self, url: str, new_id: Callable[[], str], replica_id: str) -> None:
        self.url = url
        self.where = display_url(url)
        self.replica_id = replica_id
        self._new_id = new_id
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
                migrate(conn, self.where)
        except psycopg.Error as err:
            raise StateError(
                f"failed to open the coordinator state `{self.where}`: {_reason(err)}",
                hint="check that the database is reachable and the user may create tables",
            ) from err
        self._pool: _Pool | None = None
        self._opening = asyncio.Lock()

    async def _open_pool(self) -> _Pool:
        async with self._opening:
            if self._pool is None:
                pool: _Pool = AsyncConnectionPool(
                    self.url, min_size=1, max_size=_POOL_SIZE, open=False, timeout=10,
                    kwargs={"autocommit": True, "row_factory": dict_row, **link_timeouts(self.url)},
                    name="envd-state",
                )  # fmt: skip
                await pool.open(wait=True, timeout=30)
                self._pool = pool
            return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[DictRow]]:
        """A pooled connection; database errors become StateError naming the database."""
        pool = self._pool or await self._open_pool()
        try:
            async with pool.connection() as conn:
                yield conn
        except psycopg.Error as err:
            raise StateError(
                f"failed to write the coordinator state `{self.where}`: {_reason(err)}",
                hint="check the database (reachable, not read-only, space left); jobs "
                "already accepted are kept",
            ) from err
        except TimeoutError as err:  # no connection within the pool's timeout
            raise StateError(
                f"failed to reach the coordinator state `{self.where}`: no connection",
                hint="check that the database is up and reachable from this coordinator",
            ) from err

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def create_or_attach(self, new: NewJob, now: float) -> tuple[Job, bool]:
        async with self.connection() as conn, conn.transaction():
            # one creator at a time per (req_id, platform), as SQLite's BEGIN IMMEDIATE: a
            # request without archives then always finds a job caching them if one exists
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"{new.req_id}/{new.platform}",),
            )
            cur = await conn.execute(
                f"SELECT * FROM jobs WHERE req_id=%s AND platform=%s AND status IN {_IN_FLIGHT_SQL}"
                " AND (NOT no_archives OR no_archives = %s) ORDER BY no_archives LIMIT 1",
                (new.req_id, new.platform, new.no_archives),
            )
            row = await cur.fetchone()
            if row is not None:
                return _job(row), False
            cur = await conn.execute(
                "INSERT INTO jobs (job_id, req_id, platform, canonical_spec, no_archives,"
                " requester, status, created_at, queued_at) VALUES"
                f" (%s,%s,%s,%s,%s,%s,'queued',%s,%s) RETURNING *, {_QUEUED}",
                (
                    f"job-{self._new_id()}", new.req_id, new.platform, new.canonical_spec,
                    new.no_archives, Jsonb(new.requester), now, now,
                ),
            )  # fmt: skip
            created = await cur.fetchone()
            assert created is not None
            return _job(created), True

    async def get(self, job_id: str) -> Job:
        found = await self._select("SELECT * FROM jobs WHERE job_id=%s", (job_id,))
        if not found:
            raise JobNotFoundError(
                f"no job `{job_id}` on this coordinator",
                hint="job ids come from `envd-client resolve --no-wait`",
            )
        return found[0]

    async def queued(
        self, platforms: Sequence[str], limit: int, native_platform: str | None = None,
        build_pythons: Sequence[str] = (),
    ) -> list[Job]:  # fmt: skip
        return await self._select(
            "SELECT * FROM jobs WHERE status='queued' AND platform = ANY(%s)"
            " AND (native_build IS NULL OR (platform = %s AND (native_python IS NULL"
            " OR native_python = ANY(%s)))) ORDER BY created_at LIMIT %s",
            (list(platforms), native_platform, list(build_pythons), limit),
        )

    async def queued_before(self, cutoff: float) -> list[Job]:
        return await self._select(
            "SELECT * FROM jobs WHERE status='queued' AND queued_at <= %s", (cutoff,)
        )

    async def lease(self, job_id: str, agent_id: str, expires_at: float) -> Job | None:
        # a job another replica is leasing right now is skipped, not waited for
        return await self._one(
            "UPDATE jobs SET status='leased', lease_id=%s, agent_id=%s, lease_expires_at=%s,"
            " attempts=attempts+1 WHERE job_id = (SELECT job_id FROM jobs WHERE job_id=%s"
            " AND status='queued' FOR UPDATE SKIP LOCKED) RETURNING *",
            (f"lease-{self._new_id()}", agent_id, expires_at, job_id),
        )

    async def renew(self, lease_ids: Sequence[str], expires_at: float) -> set[str]:
        async with self.connection() as conn:
            cur = await conn.execute(
                "UPDATE jobs SET lease_expires_at=%s WHERE status='leased'"
                " AND lease_id = ANY(%s) RETURNING lease_id",
                (expires_at, list(dict.fromkeys(lease_ids))),
            )
            return {row["lease_id"] for row in await cur.fetchall()}

    async def by_lease(self, lease_id: str) -> Job | None:
        sql = f"SELECT * FROM jobs WHERE lease_id=%s AND status IN {_IN_FLIGHT_SQL}"
        return await self._one(sql, (lease_id,))

    async def begin_completion(self, lease_id: str, full_id: str, now: float) -> Job | None:
        return await self._one(
            "UPDATE jobs SET status='completing', full_id=%s, completer=%s WHERE lease_id=%s"
            " AND status='leased' AND lease_expires_at >= %s RETURNING *",
            (full_id, self.replica_id, lease_id, now),
        )

    async def complete(self, job_id: str, full_id: str) -> Job | None:
        return await self._one(
            "UPDATE jobs SET status='done', full_id=%s, lease_id=NULL, completer=NULL"
            " WHERE job_id=%s AND status='completing' RETURNING *",
            (full_id, job_id),
        )

    async def fail(
        self, job_id: str, error: dict[str, str], lease_id: str | None = None
    ) -> Job | None:
        # an agent's report (its lease given) counts only while it holds the job
        where = f"status IN {_IN_FLIGHT_SQL}" if lease_id is None else "status='leased'"
        fence = "" if lease_id is None else " AND lease_id=%s"
        return await self._one(
            "UPDATE jobs SET status='failed', error=%s, lease_id=NULL, completer=NULL"
            f" WHERE job_id=%s AND {where}{fence} RETURNING *",
            (Jsonb(error), job_id, *_opt(lease_id)),
        )

    async def requeue(
        self, job_id: str, now: float, lease_id: str | None = None,
        native_build: str | None = None, native_python: str | None = None,
    ) -> Job | None:  # fmt: skip
        where = "status IN ('leased', 'completing')" if lease_id is None else "status='leased'"
        fence = "" if lease_id is None else " AND lease_id=%s"
        return await self._one(
            "UPDATE jobs SET status='queued', lease_id=NULL, agent_id=NULL,"
            " lease_expires_at=NULL, full_id=NULL, completer=NULL, queued_at=%s,"
            " native_build=COALESCE(%s, native_build),"
            " native_python=COALESCE(%s, native_python)"
            f" WHERE job_id=%s AND {where}{fence}"
            f" RETURNING *, {_QUEUED}",
            (now, native_build, native_python, job_id, *_opt(lease_id)),
        )

    async def cancel(self, job_id: str, error: dict[str, str]) -> Job | None:
        return await self._one(
            "UPDATE jobs SET status='cancelled', error=%s, lease_id=NULL, completer=NULL"
            f" WHERE job_id=%s AND status IN {_IN_FLIGHT_SQL} RETURNING *",
            (Jsonb(error), job_id),
        )

    async def expired(self, now: float) -> list[Job]:
        return await self._select(
            "SELECT * FROM jobs WHERE status='leased' AND lease_expires_at < %s", (now,)
        )

    async def finished_among(self, job_ids: Sequence[str]) -> list[Job]:
        """Those of `job_ids` that have ended (replicas re-read what NOTIFY may have lost)."""
        return await self._select(
            "SELECT * FROM jobs WHERE job_id = ANY(%s) AND status IN ('done', 'failed',"
            " 'cancelled')",
            (list(job_ids),),
        )

    async def completing(self) -> list[Job]:
        """Completing jobs no live replica but this one is finishing; they become this
        replica's (at start: those a stopped coordinator left)."""
        return await self._select(
            "UPDATE jobs SET completer=%(me)s WHERE status='completing' AND (completer IS NULL"
            f" OR completer=%(me)s OR completer NOT IN ({_LIVE_REPLICAS})) RETURNING *",
            {"me": self.replica_id},
        )

    async def adopt_orphaned_completions(self) -> list[Job]:
        """Completing jobs whose replica stopped heartbeating (killed mid-completion): this
        replica takes them over (one conditional write: one replica wins each)."""
        return await self._select(
            "UPDATE jobs SET completer=%(me)s WHERE status='completing' AND completer<>%(me)s"
            f" AND completer NOT IN ({_LIVE_REPLICAS}) RETURNING *",
            {"me": self.replica_id},
        )

    async def recover_after_restart(self, expires_at: float, now: float, requeue: bool) -> int:
        """As SQLite's, but only when no other replica is alive: a replica joining a running
        fleet finds agents connected and timers running, and leaves them be."""
        async with self.connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"SELECT count(*) AS n FROM ({_LIVE_REPLICAS} AND replica_id <> %s) AS live",
                (self.replica_id,),
            )
            row = await cur.fetchone()
            if row is not None and row["n"] > 0:
                return 0
            await conn.execute("UPDATE jobs SET queued_at=%s WHERE status='queued'", (now,))
            if requeue:
                cur = await conn.execute(
                    "UPDATE jobs SET status='queued', lease_id=NULL, agent_id=NULL,"
                    " lease_expires_at=NULL, queued_at=%s WHERE status='leased'",
                    (now,),
                )
            else:
                cur = await conn.execute(
                    "UPDATE jobs SET lease_expires_at=%s WHERE status='leased'", (expires_at,)
                )
            return cur.rowcount

    async def _select(self, sql: str, args: Sequence[Any] | dict[str, Any]) -> list[Job]:
        async with self.connection() as conn:
            cur = await conn.execute(sql.encode(), args)
            return [_job(row) for row in await cur.fetchall()]

    async def _one(self, sql: str, args: Sequence[Any]) -> Job | None:
        """One job (a conditional write's: the job as it now is), or None."""
        found = await self._select(sql, args)
        return found[0] if found else None


def link_timeouts(url: str) -> dict[str, int]:
    """A cut network link fails a call within seconds instead of TCP's many minutes (unless
    the URL says otherwise)."""
    given = conninfo_to_dict(url)
    defaults = {"tcp_user_timeout": 10_000, "keepalives_idle": 10, "keepalives_interval": 5,
                "keepalives_count": 3}  # fmt: skip
    return {k: v for k, v in defaults.items() if k not in given}


def _reason(err: psycopg.Error) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _opt(value: str | None) -> tuple[str, ...]:
    return () if value is None else (value,)


def _job(row: DictRow) -> Job:
    return job_from_row(row, dict)


assert set(IN_FLIGHT) == {JobStatus(s.strip(" '")) for s in _IN_FLIGHT_SQL[1:-1].split(",")}
