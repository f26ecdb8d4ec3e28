"""Coordinator replicas on one real PostgreSQL, agents and clients on loopback.

Several daemons stand behind one target the way gRPC dials a fleet: a list of addresses
(`ipv4:A,B,C`, as a DNS name with several records resolves), tried in order (pick_first). A
client or agent whose replica dies reconnects to the next one and re-attaches by job id."""

from __future__ import annotations

import collections
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from envd.client.api import EnvdClient, ResolveResult
from envd.errors import NoAgentForPlatformError
from envd.progress import Outcome, ResolveEvent, Stage
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec
from harness import ChannelServer, Cluster, Process, wait_for
from postgres_server import PostgresServer

pytestmark = pytest.mark.integration
# distinct requests the example channel can solve
DEPENDENCIES = ["python=3.9", "python", "pip", "setuptools", "wheel", "six", "pyparsing",
                "certifi", "sqlite", "openssl"]  # fmt: skip


class Fleet:
    """Replicas sharing one PostgreSQL schema; `target(i)` lists them starting at replica i."""

    def __init__(self, cluster: Cluster, url: str) -> None:
        self.cluster = cluster
        self.url = url
        self.replicas: list[Process] = []
        self.addresses: list[str] = []

    def start_replicas(self, count: int, **options: float) -> None:
        for _ in range(count):
            self.replicas.append(self.cluster.start_daemon(state=self.url, **options))  # type: ignore[arg-type]
            self.addresses.append(self.cluster.address)

    def target(self, first: int = 0) -> str:
        order = self.addresses[first:] + self.addresses[:first]
        return "ipv4:" + ",".join(order)

    def start_agent(self, name: str, first: int, slots: int = 1) -> Process:
        self.cluster.address = self.target(first)
        return self.cluster.start_agent(name, ["linux-64"], slots=slots)

    def jobs(self) -> list[tuple[str, str, str, str]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute("SELECT job_id, req_id, platform, status FROM jobs").fetchall()
        return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]

    def logs(self) -> str:
        return "".join(process.log() for process in self.replicas)


@pytest.fixture
def fleet(cluster: Cluster, postgres: PostgresServer) -> Iterator[Fleet]:
    yield Fleet(cluster, postgres.new_schema())


def spec(channel_url: str, dependency: str) -> Spec:
    return normalize_spec(RawSpec(conda=[RawDependency(dependency)], channels=[channel_url]))


def test_300_requests_over_three_replicas_make_one_job_per_req_id_and_platform(
    fleet: Fleet, channel: ChannelServer
) -> None:
    fleet.start_replicas(3)
    accepted = threading.Semaphore(0)
    requests = [(i % 3, DEPENDENCIES[i % len(DEPENDENCIES)]) for i in range(300)]

    def on_event(event: ResolveEvent) -> None:
        if event.stage is Stage.ACCEPTED:
            accepted.release()

    def request(item: tuple[int, str]) -> ResolveResult:
        with EnvdClient(fleet.target(item[0])) as client:
            return client.resolve(
                spec(channel.url, item[1]), ["linux-64"], on_event=on_event, no_archives=True
            )

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        futures = [pool.submit(request, item) for item in requests]
        for _ in requests:  # every request persisted before any agent exists
            assert accepted.acquire(timeout=60)
        for i in range(4):
            fleet.start_agent(f"agent-{i}", first=i % 3)
        results = [future.result(timeout=120) for future in futures]
    jobs = fleet.jobs()
    assert len(jobs) == len(DEPENDENCIES)
    assert {status for *_, status in jobs} == {"done"}
    assert len({(req_id, platform) for _, req_id, platform, _ in jobs}) == len(jobs)
    full_ids: dict[str, set[str]] = collections.defaultdict(set)
    for (_, dependency), result in zip(requests, results, strict=True):
        event = result.events["linux-64"]
        assert event.stage is Stage.DONE and event.description is not None
        full_ids[dependency].add(event.full_id)
    assert all(len(ids) == 1 for ids in full_ids.values())
    outcomes = collections.Counter(r.events["linux-64"].outcome for r in results)
    assert outcomes == {Outcome.RESOLVED: len(DEPENDENCIES), Outcome.DEDUP: 300 - len(DEPENDENCIES)}
    assert "Traceback" not in fleet.logs()


def test_kill9_of_a_replica_and_of_an_agent_mid_job_answers_every_request(
    fleet: Fleet, channel: ChannelServer
) -> None:
    fleet.start_replicas(3)
    agents = [fleet.start_agent(f"agent-{i}", first=i % 3) for i in range(4)]
    requests = [(i % 3, DEPENDENCIES[i % len(DEPENDENCIES)]) for i in range(30)]
    accepted = threading.Semaphore(0)

    def on_event(event: ResolveEvent) -> None:
        if event.stage is Stage.ACCEPTED:
            accepted.release()

    def request(item: tuple[int, str]) -> ResolveResult:
        with EnvdClient(fleet.target(item[0]), reattach_timeout=60) as client:
            return client.resolve(spec(channel.url, item[1]), ["linux-64"], on_event=on_event,
                                  no_archives=True)  # fmt: skip

    channel.set_delay(1.0)  # every job is in flight for a while
    try:
        with ThreadPoolExecutor(max_workers=len(requests)) as pool:
            futures = [pool.submit(request, item) for item in requests]
            for _ in requests:  # what a replica acknowledged it must not lose
                assert accepted.acquire(timeout=60)
            wait_for(lambda: _leased_by(fleet, "agent-1"), 30, "agent-1 holding a lease")
            agents[1].kill9()  # connected to replica 1; its lease must expire and move
            fleet.replicas[0].kill9()  # its clients and agents 0 and 3 move to replica 1
            results = [future.result(timeout=120) for future in futures]
    finally:
        channel.set_delay(0.0)
    for result in results:
        event = result.events["linux-64"]
        assert event.stage is Stage.DONE, event
    jobs = fleet.jobs()
    assert len({(req_id, platform) for _, req_id, platform, _ in jobs}) == len(DEPENDENCIES)
    logs = fleet.logs()
    assert re.search(r"requeued job=\S+ lease=\S+: lease of agent `agent-1`|"
                     r"agent `agent-1` disconnected", logs), logs  # fmt: skip
    assert "Traceback" not in logs


def _leased_by(fleet: Fleet, agent_id: str) -> bool:
    with psycopg.connect(fleet.url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM jobs WHERE status='leased' AND agent_id=%s", (agent_id,)
        ).fetchone()
    return bool(row and row[0])


def test_no_agent_timeout_fires_once_and_agents_count_fleet_wide(
    fleet: Fleet, channel: ChannelServer
) -> None:
    """An agent on replica 0 keeps a job queued on replica 2 alive past the no-agent timeout
    (it serves the platform, fleet-wide); a platform nobody serves fails once, not thrice."""
    fleet.start_replicas(3, no_agent_timeout=1.5)
    fleet.start_agent("agent-0", first=0)
    for address in fleet.addresses[1:]:  # the other replicas learn of it within a beat or two
        with EnvdClient(address) as client:
            wait_for(lambda c=client: "linux-64" in c.info().platforms, 10, "the fleet view")
    messages: list[str] = []
    channel.set_delay(2.0)  # the second job waits past the no-agent timeout
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            busy = pool.submit(_resolve, fleet.target(0), spec(channel.url, "pip"), "linux-64")
            wait_for(lambda: _leased_by(fleet, "agent-0"), 30, "agent-0 busy")
            waiting = pool.submit(_resolve, fleet.target(2), spec(channel.url, "six"),
                                  "linux-64", messages)  # fmt: skip
            nobody = pool.submit(_resolve, fleet.target(1), spec(channel.url, "wheel"), "osx-64")
            assert busy.result(timeout=60).events["linux-64"].stage is Stage.DONE
            assert waiting.result(timeout=60).events["linux-64"].stage is Stage.DONE
            failed = nobody.result(timeout=60).events["osx-64"]
    finally:
        channel.set_delay(0.0)
    assert "queued for one of 1 agent(s) serving `linux-64`" in messages
    assert failed.stage is Stage.FAILED and isinstance(failed.error, NoAgentForPlatformError)
    logs = fleet.logs()
    assert len(re.findall(rf"failed job={failed.job_id} ", logs)) == 1, logs
    assert "dispatch round failed" not in logs and "Traceback" not in logs


def _resolve(
    target: str, request: Spec, platform: str, messages: list[str] | None = None
) -> ResolveResult:
    def on_event(event: ResolveEvent) -> None:
        if messages is not None:
            messages.append(event.message)

    with EnvdClient(target) as client:
        return client.resolve(request, [platform], on_event=on_event, no_archives=True)
