"""Coordinator replicas on one real PostgreSQL, agents and clients on loopback.

Several daemons stand behind one target the way gRPC dials a fleet: a list of addresses
(`ipv4:A,B,C`, as a DNS name with several records resolves), tried in order (pick_first). A
client or agent whose replica dies reconnects to the next one and re-attaches by job id."""

from __future__ import annotations

import collections
import itertools
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
