"""The job lifecycle as a table: every (state, event) pair, whether it is allowed and where it
leads, run against the lifecycle with an injected clock over an in-memory state, the SQLite
state and the PostgreSQL one. No processes, no sockets — but for the PostgreSQL run, which
needs the session's one server (the `postgres` fixture; skipped only where none can start)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from envd.clock import random_id
from envd.daemon.agent_registry import AssignJob, ConnectedAgent
from envd.daemon.jobs import JobLifecycle
from envd.daemon.state import Job, JobState, JobStatus, NewJob
from envd.daemon.state_postgres import PostgresJobState
from envd.errors import UnsatisfiableError
from lifecycle_world import REQ, TTL, World, make_world, outbox, sqlite_state
from memory_state import MemoryJobState
from postgres_server import PostgresServer

Q, L, C = JobStatus.QUEUED, JobStatus.LEASED, JobStatus.COMPLETING
D, F, X = JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED
STATES: dict[str, Callable[[Path], JobState]] = {
    "memory": lambda _: MemoryJobState(),
    "sqlite": sqlite_state,
}


@dataclass
class Case:
    """A job driven to a state, with the agent holding it (if any) and its last lease."""

    w: World
    job: Job
    agent: ConnectedAgent | None
    lease_id: str | None
    submitted: Job | None = None

    async def now(self) -> Job:
        return await self.w.state.get(self.job.job_id)


def new_job() -> NewJob:
    return NewJob(REQ, "linux-64", b"{}", False, {"user": "u", "host": "h"})


async def drive(w: World, target: JobStatus) -> Case:
    job, _ = await w.jobs.create_or_attach(new_job())
    case = Case(w, job, None, None)
    if target is Q:
        return case
    if target is X:
        await w.jobs.cancel(job.job_id, "test")
        return case
    agent = await w.agent()
    await w.dispatcher.dispatch()
    (assignment,) = outbox(agent)
    assert isinstance(assignment, AssignJob)
    case = Case(w, assignment.job, agent, assignment.job.lease_id)
    assert case.lease_id is not None
    if target is L:
        return case
    if target is F:
        await w.sessions.failure(agent, case.lease_id, UnsatisfiableError("no"))
        return case
    full_id = w.describe()
    if target is C:  # accepted, not yet finished: a coordinator stopped mid-completion
        assert await w.state.begin_completion(case.lease_id, full_id, w.clock.t) is not None
        return case
    await w.sessions.result(agent, case.lease_id, full_id)
    return case


Event = Callable[[Case], Awaitable[None]]


async def submit(c: Case) -> None:
    c.submitted, _ = await c.w.jobs.create_or_attach(new_job())


async def lease(c: Case) -> None:
    await c.w.agent("another")
    await c.w.dispatcher.dispatch()


async def heartbeat(c: Case) -> None:
    """Renew, then let most of a TTL pass: a renewed lease is still held after the sweep."""
    holder = c.agent or await c.w.agent("stranger")
    await c.w.sessions.heartbeat(holder, [c.lease_id or "lease-none"])
    c.w.clock.t += TTL * 0.9
    await c.w.dispatcher.sweep()


async def expiry(c: Case) -> None:
    c.w.clock.t += TTL + 1
    await c.w.dispatcher.sweep()


async def result(c: Case) -> None:
    holder = c.agent or await c.w.agent("stranger")
    await c.w.sessions.result(holder, c.lease_id or "lease-none", c.w.describe())


async def late_result(c: Case) -> None:
    c.w.clock.t += TTL + 1
    await result(c)


async def failure(c: Case) -> None:
    holder = c.agent or await c.w.agent("stranger")
    await c.w.sessions.failure(holder, c.lease_id or "lease-none", UnsatisfiableError("no"))


async def attempts_used_up(c: Case) -> None:
    """Four earlier leases of this job ended without a result; now this one expires too."""
    for _ in range(c.w.jobs.settings.max_attempts - 1):
        if (await c.now()).status is not L:
            break
        await expiry(c)
        await c.w.agent()
        await c.w.dispatcher.dispatch()
    await expiry(c)


async def agent_gone(c: Case) -> None:
    if c.agent is not None:
        c.w.sessions.disconnected(c.agent)
    await expiry(c)


async def restart(c: Case) -> None:
    """A new coordinator over the same state: leased jobs wait one TTL, completing ones finish."""
    w = c.w
    await w.state.recover_after_restart(w.clock.t + TTL, w.clock.t, requeue=False)
    jobs = JobLifecycle(state=w.state, events=w.events, catalog=w.catalog, clock=w.clock,
                        settings=w.jobs.settings)  # fmt: skip
    for job in await w.state.completing():
        await jobs.finish_completion(job)


EVENTS: dict[str, Event] = {
    "submit": submit, "lease": lease, "heartbeat": heartbeat, "expiry": expiry,
    "result": result, "late_result": late_result, "failure": failure,
    "attempts_used_up": attempts_used_up, "agent_gone": agent_gone, "restart": restart,
}  # fmt: skip
# (state, event) → the job's state after it; the same state means the event changed nothing
TABLE: dict[JobStatus, dict[str, JobStatus]] = {
    Q: {"submit": Q, "lease": L, "heartbeat": Q, "expiry": Q, "result": Q, "late_result": Q,
        "failure": Q, "attempts_used_up": Q, "agent_gone": Q, "restart": Q},
    L: {"submit": L, "lease": L, "heartbeat": L, "expiry": Q, "result": D, "late_result": L,
        "failure": F, "attempts_used_up": F, "agent_gone": Q, "restart": L},
    C: {"submit": C, "lease": C, "heartbeat": C, "expiry": C, "result": C, "late_result": C,
        "failure": C, "attempts_used_up": C, "agent_gone": C, "restart": D},
    D: {e: D for e in EVENTS},
    F: {e: F for e in EVENTS},
    X: {e: X for e in EVENTS},
}  # fmt: skip
PAIRS = [(s, e, after) for s, row in TABLE.items() for e, after in row.items()]


def test_the_table_covers_every_state_and_event() -> None:
    assert set(TABLE) == set(JobStatus)
    assert all(set(row) == set(EVENTS) for row in TABLE.values())


def _postgres_states(server: PostgresServer) -> Callable[[Path], JobState]:
    """Each world its own schema on the one server: no pair sees another's jobs."""
    return lambda _: PostgresJobState(server.new_schema(), random_id, random_id())


@pytest.mark.parametrize("backend", [*sorted(STATES), "postgres"])
def test_every_state_and_event(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """One run over the whole table (each pair in a fresh world), under 2 s (PostgreSQL:
    about 2.5 s, most of it a fresh schema per pair)."""
    make_state = (_postgres_states(request.getfixturevalue("postgres")) if backend == "postgres"
                  else STATES[backend])  # fmt: skip

    async def main() -> list[str]:
        wrong = []
        for index, (state, event, expected) in enumerate(PAIRS):
            w = await make_world(tmp_path / str(index), make_state)
            try:
                case = await drive(w, state)
                assert (await case.now()).status is state
                await EVENTS[event](case)
                after = await case.now()
                if after.status is not expected:
                    wrong.append(f"{state} + {event} → {after.status}, expected {expected}")
                wrong += _invariants(case, after, state, event)
            finally:
                await w.state.close()
        return wrong

    assert asyncio.run(main()) == []


def _invariants(case: Case, after: Job, state: JobStatus, event: str) -> list[str]:
    """What must hold whatever the pair: the default pointer moves only by an accepted result;
    a submit joins an in-flight job and never a finished one; a lease is never taken over."""
    wrong = []
    name = f"{state} + {event}"
    moved = case.w.catalog.get_default(REQ, "linux-64") is not None
    may_move = state is D or (state, event) in {(L, "result"), (C, "restart")}
    if moved != may_move:
        wrong.append(f"{name}: the default pointer {'moved' if moved else 'did not move'}")
    if event == "submit":
        assert case.submitted is not None
        joined = case.submitted.job_id == case.job.job_id
        if joined == state.finished:
            wrong.append(f"{name}: {'joined' if joined else 'did not join'} the job")
    if after.status in (L, C) and state in (L, C) and after.lease_id != case.lease_id:
        wrong.append(f"{name}: the lease changed hands")
    return wrong
