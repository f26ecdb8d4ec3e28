"""Native-only jobs: an agent hands a job whose PyPI packages need a native build back, and the
dispatcher leases it only to an agent whose native platform is the job's (in-process, with the
in-memory state; the same rules hold for SQLite and PostgreSQL by the conformance suite)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from envd.daemon.agent_registry import AssignJob, ConnectedAgent
from envd.daemon.agent_sessions import Registration
from envd.daemon.coordinator import Coordinator
from envd.daemon.jobs import native_waiting_message
from envd.daemon.state import Job, JobStatus
from envd.progress import Stage
from lifecycle_world import World, make_world, outbox, pending
from memory_state import MemoryJobState

BUILDS = "crcmod 1.7 (sdist only)"
WAITING = "waiting for an osx-arm64 agent to build crcmod 1.7 (sdist only)"


def memory_scenario(test: Callable[[World], Awaitable[None]]) -> Callable[[Path], None]:
    def run(tmp_path: Path) -> None:
        async def main() -> None:
            world = await make_world(tmp_path, lambda _: MemoryJobState())
            try:
                await test(world)
            finally:
                await world.state.close()

        asyncio.run(main())

    run.__name__ = test.__name__
    return run


async def _agent(
    w: World, agent_id: str, native: str, platforms: tuple[str, ...],
    pythons: tuple[str, ...] = ("3.11",),
) -> ConnectedAgent:  # fmt: skip
    return await w.sessions.register(
        Registration(agent_id, "host", platforms, 1, (), native_platform=native,
                     build_pythons=pythons)
    )  # fmt: skip


async def _assigned(w: World, agent: ConnectedAgent) -> list[str]:
    await w.dispatcher.dispatch()
    return [m.job.job_id for m in outbox(agent) if isinstance(m, AssignJob)]


def _marked(platform: str, builds: str, python: str | None = None) -> Job:
    return Job("j", "r" * 40, platform, b"{}", False, {}, JobStatus.QUEUED, None, None, None,
               0, None, None, 1.0, 1.0, native_build=builds, native_python=python)  # fmt: skip


def test_the_waiting_message_names_the_platform_and_the_packages() -> None:
    assert native_waiting_message(_marked("osx-arm64", BUILDS), None) == WAITING
    assert (
        native_waiting_message(_marked("linux-64", "a 1 (git source), b 2 (sdist only)"), None)
        == "waiting for a linux-64 agent to build a 1 (git source), b 2 (sdist only)"
    )


def test_the_waiting_message_names_the_python_only_when_native_agents_lack_it() -> None:
    job = _marked("osx-arm64", BUILDS, "3.12")
    assert native_waiting_message(job, None) == WAITING  # no native agent: the words
    assert native_waiting_message(job, frozenset({"3.11", "3.12"})) == WAITING
    assert native_waiting_message(job, frozenset({"3.11"})) == (
        "waiting for an osx-arm64 agent with python 3.12 to build crcmod 1.7 (sdist only)"
    )


@memory_scenario
async def test_a_handed_back_job_goes_only_to_the_native_agent(w: World) -> None:
    job = await w.job("osx-arm64")
    watch = w.events.subscribe({job.job_id})
    linux = await _agent(w, "linux", "linux-64", ("linux-64", "osx-arm64"))
    assert await _assigned(w, linux) == [job.job_id]
    leased = await w.state.get(job.job_id)
    assert leased.lease_id is not None
    await w.sessions.release(linux, leased.lease_id, "needs a native build", [BUILDS])
    queued = await w.state.get(job.job_id)
    assert queued.status is JobStatus.QUEUED and queued.native_build == BUILDS
    assert not linux.draining  # handing a job back is not stopping
    assert await _assigned(w, linux) == []  # not native: never leased it again
    status = [(e.stage, e.message) for e in await pending(watch)]
    assert status[-1] == (Stage.QUEUED, WAITING)
    mac = await _agent(w, "mac", "osx-arm64", ("osx-arm64",))
    assert await _assigned(w, mac) == [job.job_id]
    again = await w.state.get(job.job_id)
    assert again.agent_id == "mac" and again.native_build == BUILDS


@memory_scenario
async def test_an_agent_serving_but_not_running_the_platform_does_not_count(w: World) -> None:
    job = await w.job("osx-arm64")
    linux = await _agent(w, "linux", "linux-64", ("osx-arm64",))
    await _assigned(w, linux)
    leased = await w.state.get(job.job_id)
    assert leased.lease_id is not None
    await w.sessions.release(linux, leased.lease_id, "needs a native build", [BUILDS])
    w.clock.t += 61
    await w.sessions.heartbeat(linux, [])
    await w.dispatcher.sweep()
    failed = await w.state.get(job.job_id)
    assert failed.status is JobStatus.FAILED and failed.error is not None
    assert failed.error["message"] == f"{WAITING}: none connected within 60 s"
    assert failed.error["reference"] == "E300"  # NoAgentForPlatformError, as any no-agent


@memory_scenario
async def test_a_native_agent_keeps_a_native_job_from_the_no_agent_timeout(w: World) -> None:
    job = await w.job("osx-arm64")
    linux = await _agent(w, "linux", "linux-64", ("osx-arm64",))
    await _assigned(w, linux)
    leased = await w.state.get(job.job_id)
    assert leased.lease_id is not None
    await w.sessions.release(linux, leased.lease_id, "needs a native build", [BUILDS])
    mac = await _agent(w, "mac", "osx-arm64", ("osx-arm64",))
    mac.slots = 0  # busy: the job stays queued
    w.clock.t += 61
    await w.sessions.heartbeat(mac, [])
    await w.dispatcher.sweep()
    assert (await w.state.get(job.job_id)).status is JobStatus.QUEUED


@memory_scenario
async def test_a_stopping_release_still_drains_and_keeps_no_mark(w: World) -> None:
    job = await w.job("linux-64")
    agent = await _agent(w, "a", "linux-64", ("linux-64",))
    await _assigned(w, agent)
    leased = await w.state.get(job.job_id)
    assert leased.lease_id is not None
    await w.sessions.release(agent, leased.lease_id, "agent stopping")
    queued = await w.state.get(job.job_id)
    assert agent.draining and queued.native_build is None


@memory_scenario
async def test_a_request_joining_a_native_only_job_hears_what_it_waits_for(w: World) -> None:
    job = await w.job("osx-arm64")
    linux = await _agent(w, "linux", "linux-64", ("osx-arm64",))
    await _assigned(w, linux)
    leased = await w.state.get(job.job_id)
    assert leased.lease_id is not None
    await w.sessions.release(linux, leased.lease_id, "needs a native build", [BUILDS])
    coordinator = Coordinator(jobs=w.jobs, catalog=w.catalog, clock=w.clock,
                              settings=w.jobs.settings, registry=w.registry,
                              dispatcher=w.dispatcher)  # fmt: skip
    status = coordinator.status_event(await w.state.get(job.job_id))
    assert (status.stage, status.message) == (Stage.QUEUED, WAITING)


async def _handed_back(w: World, platform: str, python: str) -> tuple[Job, ConnectedAgent]:
    """A job of `platform` leased by a non-native agent, handed back needing `python`."""
    job = await w.job(platform)
    other = "osx-arm64" if platform != "osx-arm64" else "linux-64"
    helper = await _agent(w, "helper", other, (platform,))
    assert await _assigned(w, helper) == [job.job_id]
    leased = await w.state.get(job.job_id)
    assert leased.lease_id is not None
    await w.sessions.release(helper, leased.lease_id, "needs a native build", [BUILDS], python)
    queued = await w.state.get(job.job_id)
    assert queued.native_build == BUILDS and queued.native_python == python
    return queued, helper


@memory_scenario
async def test_a_native_job_goes_only_to_a_native_agent_building_its_python(w: World) -> None:
    job, _ = await _handed_back(w, "osx-arm64", "3.12")
    old = await _agent(w, "mac-311", "osx-arm64", ("osx-arm64",), ("3.10", "3.11"))
    assert await _assigned(w, old) == []  # native, but builds for other pythons
    new = await _agent(w, "mac-312", "osx-arm64", ("osx-arm64",), ("3.12",))
    assert await _assigned(w, new) == [job.job_id]
    assert (await w.state.get(job.job_id)).agent_id == "mac-312"


@memory_scenario
async def test_a_native_agent_without_the_python_hands_the_job_back(w: World) -> None:
    """The first lease of a job goes to any agent; a native one lacking the python releases it
    with the python, and it waits for a native agent that has it (named in its status)."""
    job = await w.job("linux-64")
    watch = w.events.subscribe({job.job_id})
    old = await _agent(w, "old", "linux-64", ("linux-64",), ("3.10",))
    assert await _assigned(w, old) == [job.job_id]
    leased = await w.state.get(job.job_id)
    assert leased.lease_id is not None
    await w.sessions.release(old, leased.lease_id, "needs python 3.11", [BUILDS], "3.11")
    assert not old.draining and await _assigned(w, old) == []
    waiting = "waiting for a linux-64 agent with python 3.11 to build crcmod 1.7 (sdist only)"
    assert [(e.stage, e.message) for e in await pending(watch)][-1] == (Stage.QUEUED, waiting)
    coordinator = Coordinator(jobs=w.jobs, catalog=w.catalog, clock=w.clock,
                              settings=w.jobs.settings, registry=w.registry,
                              dispatcher=w.dispatcher)  # fmt: skip
    status = coordinator.status_event(await w.state.get(job.job_id))
    assert (status.stage, status.message) == (Stage.QUEUED, waiting)
    new = await _agent(w, "new", "linux-64", ("linux-64",), ("3.11",))
    assert await _assigned(w, new) == [job.job_id]


@memory_scenario
async def test_no_native_agent_with_the_python_fails_naming_the_versions(w: World) -> None:
    job, helper = await _handed_back(w, "osx-arm64", "3.12")
    mac = await _agent(w, "mac", "osx-arm64", ("osx-arm64",), ("3.11", "3.10"))
    assert await _assigned(w, mac) == []
    w.clock.t += 61
    await w.sessions.heartbeat(mac, [])
    await w.sessions.heartbeat(helper, [])
    await w.dispatcher.sweep()
    failed = await w.state.get(job.job_id)
    assert failed.status is JobStatus.FAILED and failed.error is not None
    assert failed.error["message"] == (
        f"{WAITING}: no agent connected within 60 s builds for python 3.12; connected "
        "osx-arm64 agents build for 3.10, 3.11"
    )
    assert failed.error["hint"] == (
        "start `envd-agent --coordinator ADDR --build-python /path/to/python3.12` on a "
        "`osx-arm64` machine, or resolve for python 3.10, 3.11"
    )
    assert failed.error["reference"] == "E300"


@memory_scenario
async def test_a_native_agent_with_the_python_keeps_the_job_from_the_timeout(w: World) -> None:
    job, _ = await _handed_back(w, "osx-arm64", "3.12")
    mac = await _agent(w, "mac", "osx-arm64", ("osx-arm64",), ("3.12",))
    mac.slots = 0  # busy: the job stays queued
    w.clock.t += 61
    await w.sessions.heartbeat(mac, [])
    await w.dispatcher.sweep()
    assert (await w.state.get(job.job_id)).status is JobStatus.QUEUED
