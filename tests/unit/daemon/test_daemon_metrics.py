"""The coordinator's metrics over a real job lifecycle (SQLite state, local store, dispatcher,
agent sessions) with an injected clock: each transition moves exactly its metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from envd.agents.metrics import AgentMetrics
from envd.daemon.agent_registry import RevokeLease
from envd.daemon.job_log import chain
from envd.daemon.jobs import Transition
from envd.daemon.metrics import DaemonMetrics
from envd.errors import ChannelError, StoreError
from lifecycle_world import TTL, FakeClock, World, make_world, outbox

LINUX = {"platform": "linux-64"}
DAEMON_FAMILIES = {
    "envd_build_info", "envd_requests", "envd_request_duration_seconds",
    "envd_queue_wait_seconds", "envd_queue_depth", "envd_jobs_in_flight",
    "envd_queue_oldest_wait_seconds", "envd_agents_connected", "envd_lease_expiries",
    "envd_redispatches", "envd_lease_revocations", "envd_jobs_finished", "envd_store_errors",
    "envd_channel_errors", "envd_auth_errors", "envd_grpc_server_started",
    "envd_grpc_server_handled", "envd_grpc_server_handling_seconds",
}  # fmt: skip
AGENT_FAMILIES = {
    "envd_build_info", "envd_solve_duration_seconds", "envd_build_duration_seconds",
    "envd_builds", "envd_fetch_duration_seconds", "envd_fetched_bytes",
    "envd_transmute_duration_seconds", "envd_transmuted_bytes", "envd_upload_duration_seconds",
    "envd_uploaded_bytes",
}  # fmt: skip


def scenario(
    test: Callable[[World, DaemonMetrics], Awaitable[None]],
) -> Callable[[Path], None]:
    """`test` on the shared in-process core (`lifecycle_world`) with the metrics hook on."""

    def run(tmp_path: Path) -> None:
        async def main() -> None:
            world = await make_world(tmp_path)
            metrics = DaemonMetrics(clock=world.clock)
            world.jobs.hook = chain(world.jobs.hook, metrics.hook)
            await metrics.watch(world.registry, world.state)
            try:
                await test(world, metrics)
            finally:
                await world.state.close()

        asyncio.run(main())

    run.__name__ = test.__name__
    return run


def families(registry: CollectorRegistry) -> set[str]:
    text = generate_latest(registry).decode()
    return {line.split()[2].removesuffix("_total") for line in text.splitlines()
            if line.startswith("# TYPE ")}  # fmt: skip


def test_every_family_is_listed_before_any_traffic() -> None:
    assert families(DaemonMetrics(clock=FakeClock()).registry) == DAEMON_FAMILIES
    assert families(AgentMetrics().registry) == AGENT_FAMILIES


def test_several_daemons_and_agents_share_a_process_not_a_registry() -> None:
    daemons = [DaemonMetrics(clock=FakeClock()), DaemonMetrics(clock=FakeClock())]
    agents = [AgentMetrics(), AgentMetrics()]
    registries = [m.registry for m in daemons] + [m.registry for m in agents]
    assert len({id(r) for r in registries}) == 4
    assert not [m for m in REGISTRY.collect() if m.name.startswith("envd_")]


@scenario
async def test_queue_leases_expiry_and_failure_move_their_metrics(
    w: World, m: DaemonMetrics
) -> None:
    value = m.registry.get_sample_value
    job = await w.job()
    w.clock.t += 5
    assert value("envd_queue_depth", LINUX) == 1
    assert value("envd_queue_oldest_wait_seconds", LINUX) == 5
    assert value("envd_agents_connected", LINUX) == 0  # not served yet, still listed
    agent = await w.agent()
    await w.dispatcher.dispatch()
    assert value("envd_queue_wait_seconds_count", LINUX) == 1
    assert value("envd_queue_wait_seconds_sum", LINUX) == 5
    # a scrape comes from the endpoint's thread: the values are read on the event loop
    text = (await asyncio.to_thread(generate_latest, m.registry)).decode()
    assert 'envd_jobs_in_flight{platform="linux-64"} 1.0' in text
    assert 'envd_agents_connected{platform="linux-64"} 1.0' in text
    assert 'envd_queue_depth{platform="linux-64"} 0.0' in text

    w.clock.t += 2 * TTL  # no heartbeat: the lease runs out
    await w.dispatcher.sweep()
    assert value("envd_lease_expiries_total", LINUX) == 1
    assert value("envd_queue_depth", LINUX) == 1
    assert any(isinstance(message, RevokeLease) for message in outbox(agent))
    await w.sessions.heartbeat(agent, [])  # alive again
    await w.dispatcher.dispatch()
    assert value("envd_redispatches_total", LINUX) == 1
    assert value("envd_queue_wait_seconds_count", LINUX) == 2

    leased = await w.state.get(job.job_id)
    assert leased.lease_id is not None
    await w.sessions.failure(agent, leased.lease_id, StoreError("failed to write `x`: down"))
    assert value("envd_jobs_finished_total", {**LINUX, "status": "failed"}) == 1
    assert value("envd_store_errors_total", {"kind": "store"}) == 1
    assert (value("envd_queue_depth", LINUX), value("envd_jobs_in_flight", LINUX)) == (0, 0)


@scenario
async def test_a_restarted_coordinator_counts_the_jobs_it_inherits(
    w: World, m: DaemonMetrics
) -> None:
    queued = await w.job("linux-64")
    leased = await w.job("osx-arm64")
    await w.state.lease(leased.job_id, "a1", w.clock.t + TTL)
    again = DaemonMetrics(clock=w.clock)
    await again.watch(w.registry, w.state)
    value = again.registry.get_sample_value
    assert value("envd_queue_depth", LINUX) == 1
    assert value("envd_jobs_in_flight", {"platform": "osx-arm64"}) == 1
    now_leased = await w.state.lease(queued.job_id, "a1", w.clock.t + TTL)
    assert now_leased is not None
    again.hook(Transition.LEASED, now_leased)
    assert (value("envd_queue_depth", LINUX), value("envd_jobs_in_flight", LINUX)) == (0, 1)


@pytest.mark.parametrize(
    ("reference", "code", "family", "kind"),
    [
        (StoreError.reference, "UNAVAILABLE", "store", "store"),
        ("E401", "DATA_LOSS", "store", "corrupt_description"),
        (ChannelError.reference, "UNAVAILABLE", "channel", "channel"),
        ("E205", "PERMISSION_DENIED", "channel", "channel_not_allowed"),
        ("", "UNAUTHENTICATED", "auth", "unauthenticated"),
        ("", "PERMISSION_DENIED", "auth", "permission_denied"),
    ],
)
def test_errors_are_counted_by_family_and_kind(
    reference: str, code: str, family: str, kind: str
) -> None:
    metrics = DaemonMetrics(clock=FakeClock())
    metrics.count_error(reference, code)
    metrics.count_error("E200", "FAILED_PRECONDITION")  # unsatisfiable: none of the three
    text = generate_latest(metrics.registry).decode()
    counted = [line for line in text.splitlines() if "_errors_total{" in line]
    assert counted == [f'envd_{family}_errors_total{{kind="{kind}"}} 1.0']


@scenario
async def test_over_a_shared_state_each_scrape_reads_the_state(w: World, m: DaemonMetrics) -> None:
    """Replicas share one state: a job another replica queued and leased is still counted."""
    replica = DaemonMetrics(clock=w.clock)
    await replica.watch(w.registry, w.state, shared=True)
    await w.job("linux-64")  # through the other lifecycle: this replica's hook never hears it
    leased = await w.job("osx-arm64")
    await w.state.lease(leased.job_id, "a1", w.clock.t + TTL)
    text = (await asyncio.to_thread(generate_latest, replica.registry)).decode()
    assert 'envd_queue_depth{platform="linux-64"} 1.0' in text
    assert 'envd_jobs_in_flight{platform="osx-arm64"} 1.0' in text
