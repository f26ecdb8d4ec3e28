"""The job lifecycle, dispatcher and agent sessions, in-process with an injected clock over a
real SQLite state and a real local store: every transition, and every illegal one refused
(the world they run in: `tests/lifecycle_world.py`)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

import pytest

from envd.daemon.agent_registry import AssignJob, RevokeLease
from envd.daemon.agent_sessions import Registration
from envd.daemon.job_events import MAX_PENDING_PROGRESS, LocalJobEvents, job_event
from envd.daemon.jobs import JobTransitionError, Transition
from envd.daemon.state import Job, JobStatus, NewJob
from envd.errors import (
    EnvironmentNotFoundError,
    RequestTooLargeError,
    StaleLeaseError,
    UnsatisfiableError,
)
from envd.progress import Outcome, Stage
from lifecycle_world import REQ, TTL, World, outbox, pending, scenario


@scenario
async def test_create_then_attach_is_single_flight(w: World) -> None:
    first = await w.job()
    second = await w.job()
    assert first.job_id == second.job_id and first.status is JobStatus.QUEUED
    assert w.hooked == [(Transition.CREATED, first.job_id), (Transition.ATTACHED, first.job_id)]


@scenario
async def test_lease_publishes_and_assigns_once(w: World) -> None:
    job = await w.job()
    watch = w.events.subscribe({job.job_id})
    agent = await w.agent()
    await w.dispatcher.dispatch()
    await w.dispatcher.dispatch()  # no free slot: nothing more
    messages = outbox(agent)
    assert len(messages) == 1 and isinstance(messages[0], AssignJob)
    leased = messages[0].job
    assert leased.status is JobStatus.LEASED and leased.agent_id == "a1"
    assert agent.leases == {leased.lease_id}
    assert [(e.stage, e.message) for e in await pending(watch)] == [
        (Stage.LEASED, "leased by agent `a1`")
    ]
    assert (Transition.LEASED, job.job_id) in w.hooked
    assert await w.jobs.lease(job.job_id, "a2") is None  # already leased


@scenario
async def test_complete_moves_the_default_and_ends_the_job_once(w: World) -> None:
    job, agent = await w.leased()
    watch = w.events.subscribe({job.job_id})
    full_id = w.describe()
    assert job.lease_id is not None
    await w.sessions.result(agent, job.lease_id, full_id)
    done = await w.state.get(job.job_id)
    assert done.status is JobStatus.DONE and done.full_id == full_id
    pointer = w.catalog.get_default(REQ, "linux-64")
    assert pointer is not None and pointer.full_id == full_id
    events = await pending(watch)
    assert [(e.stage, e.outcome, e.full_id) for e in events] == [
        (Stage.DONE, Outcome.RESOLVED, full_id)
    ]
    assert events[0].description is not None
    assert [t for t, _ in w.hooked][-2:] == [Transition.COMPLETING, Transition.COMPLETED]
    assert agent.leases == set()
    with pytest.raises(StaleLeaseError):  # a second result under the same lease
        await w.jobs.complete(job.lease_id, full_id, "a1")


@scenario
async def test_result_under_an_expired_lease_is_rejected_and_moves_nothing(w: World) -> None:
    job, agent = await w.leased()
    full_id = w.describe()
    w.clock.t += TTL + 1
    assert job.lease_id is not None
    await w.sessions.result(agent, job.lease_id, full_id)  # before the sweep ran
    assert w.catalog.get_default(REQ, "linux-64") is None
    assert (await w.state.get(job.job_id)).status is JobStatus.LEASED
    assert [type(m) for m in outbox(agent)] == [RevokeLease]
    await w.dispatcher.sweep()
    assert (await w.state.get(job.job_id)).status is JobStatus.QUEUED


@scenario
async def test_store_delayed_past_the_ttl_cannot_expire_a_completing_job(w: World) -> None:
    """The fencing race: the pointer write stalls longer than the lease TTL while the sweep
    runs; the job is not re-queued, the pointer moves once and the job ends exactly once."""
    job, agent = await w.leased()
    watch = w.events.subscribe({job.job_id})
    full_id = w.describe()
    w.store.gate = threading.Event()
    assert job.lease_id is not None
    completing = asyncio.ensure_future(w.sessions.result(agent, job.lease_id, full_id))
    await asyncio.to_thread(w.store.entered.wait, 5)
    w.clock.t += 3 * TTL  # the agent stopped renewing long ago
    await w.dispatcher.sweep()
    await w.sessions.heartbeat(agent, [job.lease_id])  # still current: not revoked
    assert (await w.state.get(job.job_id)).status is JobStatus.COMPLETING
    assert await w.dispatcher.jobs.expired() == []
    w.store.gate.set()
    await completing
    final = await w.state.get(job.job_id)
    assert final.status is JobStatus.DONE and final.attempts == 1
    stages = [e.stage for e in await pending(watch)]
    assert stages == [Stage.DONE]
    assert [t for t, _ in w.hooked].count(Transition.REQUEUED) == 0
    assert not any(isinstance(m, RevokeLease) for m in outbox(agent))


@scenario
async def test_transient_store_errors_while_completing_are_retried(w: World) -> None:
    job, agent = await w.leased()
    full_id = w.describe()
    w.store.failures = 2
    assert job.lease_id is not None
    await w.sessions.result(agent, job.lease_id, full_id)
    assert (await w.state.get(job.job_id)).status is JobStatus.DONE
    assert w.store.failures == 0


@scenario
async def test_a_store_down_past_the_completion_timeout_requeues_not_fails(w: World) -> None:
    job, agent = await w.leased()
    full_id = w.describe()
    w.store.failures = 1000
    assert job.lease_id is not None
    await w.sessions.result(agent, job.lease_id, full_id)
    after = await w.state.get(job.job_id)
    assert after.status is JobStatus.QUEUED and after.error is None and after.full_id is None
    assert w.catalog.get_default(REQ, "linux-64") is None


@scenario
async def test_a_result_without_its_description_fails_the_job(w: World) -> None:
    job, agent = await w.leased()
    watch = w.events.subscribe({job.job_id})
    assert job.lease_id is not None
    await w.sessions.result(agent, job.lease_id, "c" * 40)
    failed = await w.state.get(job.job_id)
    assert failed.status is JobStatus.FAILED and failed.error is not None
    assert failed.error["reference"] == EnvironmentNotFoundError.reference
    assert [e.outcome for e in await pending(watch)] == [Outcome.FAILED]


@scenario
async def test_failure_is_fenced_by_the_lease(w: World) -> None:
    job, agent = await w.leased()
    await w.sessions.failure(agent, "lease-forged", UnsatisfiableError("no"))
    assert (await w.state.get(job.job_id)).status is JobStatus.LEASED
    with pytest.raises(StaleLeaseError):
        await w.jobs.fail(job, UnsatisfiableError("no"), lease_id="lease-forged")
    assert (Transition.REJECTED, job.job_id) in w.hooked
    assert job.lease_id is not None
    await w.sessions.failure(agent, job.lease_id, UnsatisfiableError("conflict"))
    failed = await w.state.get(job.job_id)
    assert failed.status is JobStatus.FAILED and failed.error is not None
    assert failed.error["message"] == "conflict"
    with pytest.raises(JobTransitionError, match="is not in flight"):
        await w.jobs.fail(failed, UnsatisfiableError("again"))


@scenario
async def test_expired_lease_is_requeued_and_revoked_at_its_holder(w: World) -> None:
    job, agent = await w.leased()
    watch = w.events.subscribe({job.job_id})
    w.clock.t += TTL / 2
    assert job.lease_id is not None
    await w.sessions.heartbeat(agent, [job.lease_id])
    w.clock.t += TTL / 2 + 1
    await w.dispatcher.sweep()
    assert (await w.state.get(job.job_id)).status is JobStatus.LEASED  # renewed in time
    w.clock.t += TTL
    await w.dispatcher.sweep()
    queued = await w.state.get(job.job_id)
    assert queued.status is JobStatus.QUEUED and queued.lease_id is None
    revokes = [m for m in outbox(agent) if isinstance(m, RevokeLease)]
    assert [r.lease_id for r in revokes] == [job.lease_id]
    assert "expired (no heartbeat for 10 s)" in revokes[0].reason
    events = await pending(watch)
    assert [e.stage for e in events] == [Stage.QUEUED]
    assert events[0].message.endswith("; queued again")
    assert agent.leases == set()


@scenario
async def test_reconnect_within_the_ttl_keeps_the_lease(w: World) -> None:
    job, agent = await w.leased()
    assert job.lease_id is not None
    w.sessions.disconnected(agent)
    w.clock.t += TTL / 2
    back = await w.agent(held=(job.lease_id, "lease-gone"))
    assert back.leases == {job.lease_id}
    assert [(type(m), m.lease_id) for m in outbox(back)] == [(RevokeLease, "lease-gone")]
    w.clock.t += TTL * 0.9
    await w.dispatcher.sweep()
    assert (await w.state.get(job.job_id)).status is JobStatus.LEASED


@scenario
async def test_a_disconnected_agent_that_never_returns_loses_its_jobs_after_one_ttl(
    w: World,
) -> None:
    job, agent = await w.leased()
    w.sessions.disconnected(agent)
    w.clock.t += TTL * 0.9
    await w.dispatcher.sweep()
    assert (await w.state.get(job.job_id)).status is JobStatus.LEASED
    w.clock.t += TTL * 0.2
    watch = w.events.subscribe({job.job_id})
    await w.dispatcher.sweep()
    events = await pending(watch)
    assert [e.message for e in events] == [
        "agent `a1` disconnected and did not come back within 10 s; queued again"
    ]


@scenario
async def test_release_requeues_at_once(w: World) -> None:
    job, agent = await w.leased()
    assert job.lease_id is not None
    await w.sessions.release(agent, job.lease_id, "agent stopping")
    assert (await w.state.get(job.job_id)).status is JobStatus.QUEUED
    await w.sessions.release(agent, job.lease_id, "again")  # stale: nothing happens
    assert [t for t, _ in w.hooked].count(Transition.REQUEUED) == 1


@scenario
async def test_an_impostor_with_the_same_id_cannot_displace_the_agent(w: World) -> None:
    job, real = await w.leased()
    impostor = await w.agent("a1")
    w.sessions.disconnected(impostor)
    assert w.registry.serving("linux-64", w.clock.t, TTL) == [real]
    assert job.lease_id is not None and w.registry.holder_of(job.lease_id) is real


@scenario
async def test_too_many_leases_in_one_heartbeat_are_refused(w: World) -> None:
    agent = await w.agent()
    with pytest.raises(RequestTooLargeError, match="100000 lease ids in one message"):
        await w.sessions.heartbeat(agent, [f"lease-{i}" for i in range(100_000)])


@scenario
async def test_progress_is_never_terminal_and_needs_the_lease(w: World) -> None:
    job, agent = await w.leased()
    watch = w.events.subscribe({job.job_id})
    assert job.lease_id is not None
    await w.sessions.progress(agent, job.lease_id, Stage.DONE, "forged")
    await w.sessions.progress(agent, "lease-other", Stage.RESOLVING, "not mine")
    await w.sessions.progress(agent, job.lease_id, Stage.RESOLVING, "solving")
    assert [(e.stage, e.message) for e in await pending(watch)] == [(Stage.RESOLVING, "solving")]


@scenario
async def test_cancel_ends_an_in_flight_job_once(w: World) -> None:
    job = await w.job()
    watch = w.events.subscribe({job.job_id})
    cancelled = await w.jobs.cancel(job.job_id, "operator asked")
    assert cancelled.status is JobStatus.CANCELLED
    events = await pending(watch)
    assert [(e.stage, e.outcome) for e in events] == [(Stage.FAILED, Outcome.FAILED)]
    assert events[0].error is not None and "operator asked" in events[0].error.message
    with pytest.raises(JobTransitionError, match="already cancelled"):
        await w.jobs.cancel(job.job_id, "again")


@scenario
async def test_requeue_of_a_queued_job_is_refused(w: World) -> None:
    job = await w.job()
    assert await w.jobs.requeue(job, "why") is None
    assert Transition.REQUEUED not in [t for t, _ in w.hooked]


@scenario
async def test_no_agent_timeout_fails_only_unserved_platforms(w: World) -> None:
    served = await w.job("linux-64")
    unserved = await w.job("win-64")
    agent = await w.agent()
    agent.slots = 0  # busy: the served job stays queued
    w.clock.t += 61
    await w.sessions.heartbeat(agent, [])
    await w.dispatcher.sweep()
    assert (await w.state.get(served.job_id)).status is JobStatus.QUEUED
    failed = await w.state.get(unserved.job_id)
    assert failed.status is JobStatus.FAILED and failed.error is not None
    assert failed.error["message"] == "no agent serving `win-64` connected within 60 s"


def test_subscriptions_are_bounded_but_keep_terminal_events() -> None:
    async def main() -> None:
        events = LocalJobEvents()
        sub = events.subscribe({"j1", "j2"})
        job = Job("j1", REQ, "linux-64", b"", False, {}, JobStatus.LEASED, None, None, None,
                  0, None, None, 0.0, 0.0)  # fmt: skip
        for i in range(1000):
            events.publish(job_event(job, Stage.RESOLVING, message=str(i)))
        events.publish(job_event(job, Stage.DONE))
        got = await pending(sub)
        assert len(got) == MAX_PENDING_PROGRESS + 1 and sub.dropped == 1000 - MAX_PENDING_PROGRESS
        assert got[0].message == str(1000 - MAX_PENDING_PROGRESS)
        assert got[-1].stage is Stage.DONE
        events.unsubscribe(sub)
        assert events.following() == 0
        events.publish(job_event(job, Stage.DONE))  # nobody listening: no error

    asyncio.run(main())


@scenario
async def test_a_poison_job_fails_after_its_attempts_while_others_complete(w: World) -> None:
    """Leases of one job keep ending without a result (its agent dies on it): after
    `max_attempts` the job fails with the last reason, and the platform's next job runs."""
    poison = await w.job()
    other, _ = await w.jobs.create_or_attach(
        NewJob("b" * 40, "linux-64", b"{}", False, {"user": "u", "host": "h"})
    )
    for attempt in range(1, 6):
        agent = await w.agent(f"crashing-{attempt}")
        await w.dispatcher.dispatch()
        (assignment,) = outbox(agent)
        assert isinstance(assignment, AssignJob) and assignment.job.job_id == poison.job_id
        assert assignment.job.attempts == attempt
        w.sessions.disconnected(agent)
        w.clock.t += TTL + 1
        await w.dispatcher.sweep()
    failed = await w.state.get(poison.job_id)
    assert failed.status is JobStatus.FAILED and failed.error is not None
    assert failed.error["reference"] == "E308"
    assert failed.error["message"].startswith(
        f"job `{poison.job_id}` failed after 5 attempts; the last: agent `crashing-5` "
        "disconnected and did not come back within 10 s"
    )
    healthy = await w.agent("healthy")
    await w.dispatcher.dispatch()
    (assignment,) = outbox(healthy)
    assert isinstance(assignment, AssignJob) and assignment.job.job_id == other.job_id


@scenario
async def test_an_agent_that_released_work_gets_no_new_work(w: World) -> None:
    """Reproduces a race seen end to end: the job an agent released on SIGTERM was leased
    straight back to it while its stream was closing."""
    job, stopping = await w.leased()
    assert job.lease_id is not None
    await w.sessions.release(stopping, job.lease_id, "agent stopping")
    await w.dispatcher.dispatch()
    assert outbox(stopping) == []
    other = await w.agent("a2")
    await w.dispatcher.dispatch()
    (assignment,) = outbox(other)
    assert isinstance(assignment, AssignJob) and assignment.job.job_id == job.job_id


@scenario
async def test_an_agent_gone_while_the_queue_was_read_gets_nothing(w: World) -> None:
    job = await w.job()
    agent = await w.agent()
    w.sessions.disconnected(agent)
    await w.dispatcher._lease_next(agent)
    assert outbox(agent) == [] and (await w.state.get(job.job_id)).status is JobStatus.QUEUED


@scenario
async def test_sessions_at_their_edges(w: World) -> None:
    lazy = await w.sessions.register(Registration("zero", "h", ("linux-64",), 0, ()))
    assert lazy.slots == 1  # an agent always has a slot
    limit = w.jobs.settings.max_heartbeat_leases
    await w.sessions.heartbeat(lazy, [f"lease-{i}" for i in range(limit)])  # exactly the limit
    w.dispatcher._wakeup.clear()
    w.clock.t += TTL + 1  # silent for longer than a TTL: no longer live
    await w.sessions.heartbeat(lazy, [])
    assert w.dispatcher._wakeup.is_set()  # back: dispatch soon
    w.dispatcher._wakeup.clear()
    await w.sessions.heartbeat(lazy, [])
    assert not w.dispatcher._wakeup.is_set()  # already live: nothing to do


@scenario
async def test_an_agent_that_left_costs_its_job_no_attempt(w: World) -> None:
    job = await w.job()
    agent = await w.agent()
    w.sessions.disconnected(agent)
    await w.dispatcher._lease_next(agent)
    after = await w.state.get(job.job_id)
    assert after.status is JobStatus.QUEUED and after.attempts == 0


@scenario
async def test_the_dispatcher_loop_leases_and_survives_a_bad_round(w: World) -> None:
    """The background loop: a kick leases at once, the sweep runs on its interval without
    one, and a round that raises (a fault injected into the state: none can be caused on
    demand) is logged and the next round goes on."""
    w.dispatcher.settings = replace(w.dispatcher.settings, sweep_interval=0.01)
    calls = {"n": 0}
    real = w.state.expired

    async def flaky(now: float) -> list[Job]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("injected")
        return await real(now)

    w.state.expired = flaky  # type: ignore[method-assign]
    w.dispatcher.start()
    try:
        job = await w.job()
        agent = await w.agent()
        w.dispatcher.kick()
        for _ in range(200):
            if not agent.outbox.empty():
                break
            await asyncio.sleep(0.01)
        (assignment,) = outbox(agent)
        assert isinstance(assignment, AssignJob) and assignment.job.job_id == job.job_id
        assert calls["n"] >= 2
    finally:
        await w.dispatcher.stop()
    assert w.dispatcher._task is not None and w.dispatcher._task.done()


@scenario
async def test_completion_backs_off_then_gives_the_job_back(w: World) -> None:
    """Transient store errors while completing: retried with doubling waits capped at 2 s,
    until the next wait would pass `completion_timeout` (5 s here); then the job is queued
    again, and what `complete` returns says so."""
    job, agent = await w.leased()
    full_id = w.describe()
    w.store.failures = 1000
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        w.clock.t += seconds

    w.jobs._sleep = sleep
    assert job.lease_id is not None
    returned = await w.jobs.complete(job.lease_id, full_id, agent.agent_id)
    assert waits == [0.1, 0.2, 0.4, 0.8, 1.6]  # 3.1 s; the next 2.0 s wait would end past 5 s
    assert returned.status is JobStatus.QUEUED and returned.job_id == job.job_id
    w.jobs.settings = replace(w.jobs.settings, completion_timeout=9.0)  # the cap shows
    w.registry.release(job.lease_id)
    await w.dispatcher.dispatch()
    (again,) = outbox(agent)
    assert isinstance(again, AssignJob) and again.job.lease_id is not None
    waits.clear()
    await w.jobs.complete(again.job.lease_id, full_id, agent.agent_id)
    assert waits == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
