"""For random interleavings of lease, heartbeat, time passing, expiry and results from two
agents, the default pointer only ever moves to a result sent under the lease that held the job
at that moment (Hypothesis, derandomized; the in-memory state keeps each example fast)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envd.daemon.agent_registry import AssignJob, ConnectedAgent
from envd.daemon.state import JobStatus, NewJob
from lifecycle_world import REQ, make_world, outbox
from memory_state import MemoryJobState

OPS = st.one_of(
    st.just(("dispatch", 0)),
    st.tuples(st.just("beat"), st.integers(0, 1)),
    st.tuples(st.just("tick"), st.sampled_from([1, 4, 6, 11])),
    st.just(("sweep", 0)),
    st.tuples(st.just("result"), st.integers(0, 1)),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=200)
@given(ops=st.lists(OPS, min_size=1, max_size=25))
def test_the_pointer_moves_only_under_the_lease_holding_the_job(
    ops: list[tuple[str, int]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    async def main(root: Path) -> None:
        w = await make_world(root, lambda _: MemoryJobState())
        job, _ = await w.jobs.create_or_attach(
            NewJob(REQ, "linux-64", b"{}", False, {"user": "u", "host": "h"})
        )
        agents = [await w.agent(f"a{i}") for i in range(2)]
        held: dict[int, str] = {}  # agent index → the last lease it was given
        results = {i: w.describe(f"{i + 1}.0") for i in range(2)}  # distinct full_ids
        for op, arg in [("dispatch", 0), *ops]:
            if op == "dispatch":
                await w.dispatcher.dispatch()
                _collect(agents, held)
            elif op == "beat" and arg in held:
                await w.sessions.heartbeat(agents[arg], [held[arg]])
            elif op == "tick":
                w.clock.t += arg
            elif op == "sweep":
                await w.dispatcher.sweep()
            elif op == "result" and arg in held:
                before = await w.state.get(job.job_id)
                holds = (
                    before.status is JobStatus.LEASED
                    and before.lease_id == held[arg]
                    and before.lease_expires_at is not None
                    and before.lease_expires_at >= w.clock.t
                )
                pointer = w.catalog.get_default(REQ, "linux-64")
                await w.sessions.result(agents[arg], held.pop(arg), results[arg])
                moved = w.catalog.get_default(REQ, "linux-64")
                if moved != pointer:
                    assert moved is not None and moved.full_id == results[arg]
                    assert holds, f"pointer moved to a{arg}'s result without its lease"
                else:
                    assert not holds, f"a{arg} held the lease, yet its result was dropped"
                if (await w.state.get(job.job_id)).finished:
                    break
        await w.state.close()

    asyncio.run(main(tmp_path_factory.mktemp("w")))


def _collect(agents: list[ConnectedAgent], held: dict[int, str]) -> None:
    for index, agent in enumerate(agents):
        for message in outbox(agent):
            if isinstance(message, AssignJob) and message.job.lease_id is not None:
                held[index] = message.job.lease_id
