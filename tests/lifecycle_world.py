"""An in-process coordinator core for fast tests: the lifecycle, dispatcher and agent sessions
over a real local store, an injected clock and any `JobState` (SQLite or in memory)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from envd.catalog import Catalog
from envd.clock import random_id
from envd.daemon.agent_registry import AgentRegistry, AssignJob, ConnectedAgent
from envd.daemon.agent_sessions import AgentSessions, Registration
from envd.daemon.dispatcher import Dispatcher
from envd.daemon.job_events import LocalJobEvents, Subscription
from envd.daemon.jobs import JobLifecycle, Transition
from envd.daemon.settings import CoordinatorSettings
from envd.daemon.state import Job, JobState, NewJob
from envd.daemon.state_sqlite import SqliteJobState
from envd.description import ResolvedBy, ResolvedPackage, SolverInfo, build_description
from envd.errors import StoreError
from envd.progress import ResolveEvent
from envd.spec import CondaDependency, Spec
from envd.store.local import LocalStore

REQ = "a" * 40
TTL = 10.0
SPEC = Spec(conda=(CondaDependency(name="zlib", spec="zlib"),), channels=("conda-forge",))


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def now(self) -> float:
        return self.t


class GatedStore(LocalStore):
    """A real local store whose writes of default pointers can be held or made to fail: the
    store delays and outages these tests need and cannot cause on a local disk on demand."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.failures = 0

    def _hold(self, key: str) -> None:
        if not key.startswith("defaults/"):
            return
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.failures:
            self.failures -= 1
            raise StoreError(f"failed to write `{key}`: service unavailable (injected)")

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self._hold(key)
        return super().put_if_absent(key, data)

    def compare_and_swap(self, key: str, expected_version: str | None, data: bytes) -> str:
        self._hold(key)
        return super().compare_and_swap(key, expected_version, data)


@dataclass
class World:
    clock: FakeClock
    store: GatedStore
    catalog: Catalog
    state: JobState
    events: LocalJobEvents
    jobs: JobLifecycle
    registry: AgentRegistry
    dispatcher: Dispatcher
    sessions: AgentSessions
    hooked: list[tuple[Transition, str]] = field(default_factory=list)

    async def job(self, platform: str = "linux-64") -> Job:
        job, _ = await self.jobs.create_or_attach(
            NewJob(REQ, platform, b"{}", False, {"user": "u", "host": "h"})
        )
        return job

    async def agent(self, agent_id: str = "a1", held: tuple[str, ...] = ()) -> ConnectedAgent:
        return await self.sessions.register(Registration(agent_id, "host", ("linux-64",), 1, held))

    async def leased(self) -> tuple[Job, ConnectedAgent]:
        await self.job()
        agent = await self.agent()
        await self.dispatcher.dispatch()
        message = agent.outbox.get_nowait()
        assert isinstance(message, AssignJob)
        return message.job, agent

    def describe(self, version: str = "1.2") -> str:
        doc = build_description(
            req_id=REQ, platform="linux-64", spec=SPEC, packages=[_package(version)],
            resolved_at=datetime.fromtimestamp(self.clock.t, UTC),
            resolved_by=ResolvedBy(user="u", agent="a1", host="h"),
            solver=SolverInfo(name="rattler", version="0.28.0"),
        )  # fmt: skip
        self.catalog.write_description(doc)
        full_id: str = doc["full_id"]
        return full_id


def _package(version: str) -> ResolvedPackage:
    return ResolvedPackage(
        kind="conda", name="zlib", version=version, build="h0_0", channel="conda-forge",
        url=f"https://example.invalid/zlib-{version}-h0_0.conda",
        filename=f"zlib-{version}-h0_0.conda", sha256="1" * 64, md5=None, size=10,
        subdir="linux-64",
    )  # fmt: skip


StateFactory = Callable[[Path], JobState]


def sqlite_state(tmp_path: Path) -> JobState:
    return SqliteJobState(tmp_path / "state.sqlite", random_id)


async def make_world(tmp_path: Path, make_state: StateFactory = sqlite_state) -> World:
    """A fresh core; the caller closes `world.state`."""
    clock = FakeClock()
    store = GatedStore(tmp_path / "store")
    catalog = Catalog(store)
    state = make_state(tmp_path)
    settings = CoordinatorSettings(
        store_url=str(tmp_path), lease_ttl=TTL, no_agent_timeout=60.0, completion_timeout=5.0,
    )  # fmt: skip
    hooked: list[tuple[Transition, str]] = []

    async def sleep(seconds: float) -> None:
        clock.t += seconds

    jobs = JobLifecycle(
        state=state, events=LocalJobEvents(), catalog=catalog, clock=clock, settings=settings,
        hook=lambda t, j: hooked.append((t, j.job_id)), sleep=sleep,
    )  # fmt: skip
    registry = AgentRegistry()
    dispatcher = Dispatcher(jobs=jobs, registry=registry, clock=clock, settings=settings)
    sessions = AgentSessions(
        jobs=jobs, registry=registry, dispatcher=dispatcher, clock=clock, settings=settings
    )
    events = jobs.events
    assert isinstance(events, LocalJobEvents)
    return World(clock, store, catalog, state, events, jobs, registry, dispatcher, sessions,
                 hooked)  # fmt: skip


def scenario(test: Callable[[World], Awaitable[None]]) -> Callable[[Path], None]:
    """Run `test` in a fresh world on an event loop; the pytest test takes tmp_path."""

    def run(tmp_path: Path) -> None:
        async def main() -> None:
            world = await make_world(tmp_path)
            try:
                await test(world)
            finally:
                await world.state.close()

        asyncio.run(main())

    run.__name__ = test.__name__
    return run


async def pending(subscription: Subscription) -> list[ResolveEvent]:
    found = []
    while True:
        try:
            found.append(await asyncio.wait_for(subscription.get(), 0.01))
        except TimeoutError:
            return found


def outbox(agent: ConnectedAgent) -> list[Any]:
    found = []
    while not agent.outbox.empty():
        found.append(agent.outbox.get_nowait())
    return found
