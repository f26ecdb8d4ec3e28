"""`Replicas` on PostgreSQL: liveness and agent rows refreshed each beat, events over
LISTEN/NOTIFY, and completions left by a dead replica taken over."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

from envd.clock import Clock
from envd.errors import EnvdError

from .agent_registry import AgentRegistry, ConnectedAgent
from .dispatcher import Dispatcher
from .job_events_pg import PostgresJobEvents
from .jobs import JobLifecycle
from .settings import CoordinatorSettings
from .state import Job
from .state_postgres import PostgresJobState

log = logging.getLogger("envd.daemon")


class FleetRegistry(AgentRegistry):
    """The agents connected to this replica (sessions, outboxes, leases), and what the
    other replicas last said about theirs: which platforms, live until when."""

    def __init__(self) -> None:
        super().__init__()
        self._remote: list[tuple[tuple[str, ...], float]] = []
        self.changed = asyncio.Event()  # an agent came or went: tell the others now

    def add(self, agent: ConnectedAgent) -> None:
        super().add(agent)
        self.changed.set()

    def remove(self, agent: ConnectedAgent) -> None:
        super().remove(agent)
        self.changed.set()

    def see_remote(self, agents: list[tuple[tuple[str, ...], float]]) -> None:
        self._remote = agents

    def serving_count(self, platform: str, now: float, ttl: float) -> int:
        remote = sum(
            1 for platforms, until in self._remote if platform in platforms and until >= now
        )
        return super().serving_count(platform, now, ttl) + remote

    def platforms(self) -> list[str]:
        return sorted(set(super().platforms()) | {p for ps, _ in self._remote for p in ps})

    def agents_by_platform(self) -> dict[str, int]:
        counts = Counter(super().agents_by_platform())
        counts.update(p for platforms, _ in self._remote for p in platforms)
        return dict(sorted(counts.items()))


class PostgresReplicas:
    def __init__(
        self, state: PostgresJobState, *, clock: Clock, settings: CoordinatorSettings
    ) -> None:
        self.state = state
        self.clock = clock
        self.settings = settings
        self.registry = FleetRegistry()
        self.events = PostgresJobEvents(state)
        # a replica is dead once its row is a lease TTL old: beat well within that
        self.interval = min(settings.heartbeat_interval, settings.lease_ttl / 3)
        self._adopted: set[asyncio.Task[None]] = set()
        # set once the database was unreachable for a lease TTL: this replica can neither
        # accept nor lease jobs, so it stops and its clients and agents move to another
        self.lost = asyncio.Event()

    async def run(self, jobs: JobLifecycle, dispatcher: Dispatcher) -> None:
        self.events.on_queued = lambda platform: dispatcher.kick()
        events = asyncio.create_task(self.events.run(jobs.catalog.read_description))
        clock = asyncio.get_running_loop().time
        reached = clock()
        try:
            while True:
                try:
                    # a cut link hangs rather than fails: give up well within the TTL
                    await asyncio.wait_for(self.beat(), self.settings.lease_ttl / 2)
                    reached = clock()
                    await self.adopt(jobs)  # not cut short: what it claims, it finishes
                except (EnvdError, TimeoutError) as err:  # the next beat retries
                    reason = err.message if isinstance(err, EnvdError) else "no answer in time"
                    log.warning("replica heartbeat failed: %s", reason)
                    if clock() - reached > self.settings.lease_ttl and not self.lost.is_set():
                        log.error("the database was unreachable for over %g s",
                                  self.settings.lease_ttl)  # fmt: skip
                        self.lost.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.registry.changed.wait(), self.interval)
                self.registry.changed.clear()
        finally:
            tasks = [events, *self._adopted]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._leave()

    async def beat(self) -> None:
        """Say this replica and its agents are alive; learn the others' agents."""
        me, ttl = self.state.replica_id, self.settings.lease_ttl
        agents = [
            (me, a.session, a.agent_id, list(a.platforms), a.slots, a.last_seen + ttl)
            for a in self.registry.all()
        ]
        async with self.state.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO replicas (replica_id, expires_at) VALUES"
                " (%(me)s, now() + make_interval(secs => %(ttl)s)) ON CONFLICT (replica_id)"
                " DO UPDATE SET expires_at = excluded.expires_at",
                {"me": me, "ttl": ttl},
            )
            await conn.execute("DELETE FROM agents WHERE replica_id=%s", (me,))
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO agents (replica_id, session, agent_id, platforms, slots,"
                    " expires_at) VALUES (%s, %s, %s, %s, %s, %s)",
                    agents,
                )
            cur = await conn.execute(
                "SELECT platforms, expires_at FROM agents WHERE replica_id<>%s"
                " AND expires_at >= %s",
                (me, self.clock.now()),
            )
            remote = [(tuple(r["platforms"]), r["expires_at"]) for r in await cur.fetchall()]
        self.registry.see_remote(remote)

    async def adopt(self, jobs: JobLifecycle) -> None:
        """Finish what a dead replica left in completion."""
        for job in await self.state.adopt_orphaned_completions():
            log.warning("job=%s: its replica stopped mid-completion; finishing it here",
                        job.job_id)  # fmt: skip
            task = asyncio.create_task(self._finish(jobs, job))
            self._adopted.add(task)
            task.add_done_callback(self._adopted.discard)

    async def _finish(self, jobs: JobLifecycle, job: Job) -> None:
        try:
            await jobs.finish_completion(job)
        except EnvdError as err:  # e.g. the dead replica came back and finished it first
            log.warning("job=%s: taking over its completion failed: %s", job.job_id, err.message)

    async def _leave(self) -> None:
        """A clean stop: the others need not wait a TTL to know this replica is gone."""
        if self.lost.is_set():
            return  # no database to tell; its rows expire
        try:
            async with self.state.connection() as conn, conn.transaction():
                me = self.state.replica_id
                await conn.execute("DELETE FROM agents WHERE replica_id=%s", (me,))
                await conn.execute("DELETE FROM replicas WHERE replica_id=%s", (me,))
        except EnvdError as err:
            log.warning("failed to deregister this replica: %s", err.message)
