"""Across real network boundaries: PostgreSQL, coordinator replicas and agents each in a network
namespace of their own, joined by veth pairs on one bridge (the test's channel server and
clients stay in the test's namespace, on the bridge's address). Links go down and come back
(netem is not in this kernel): the faults are partitions.

Made and removed by the tests; skipped with the reason where `ip netns` is not allowed."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg
import pytest

from envd.client.api import EnvdClient, ResolveResult
from envd.progress import Stage
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec
from harness import EXAMPLE_CHANNEL, ChannelServer, Cluster, Process, serve_channel, wait_for
from postgres_server import PostgresServer, start_postgres
from postgres_server import unavailable_reason as postgres_unavailable

pytestmark = pytest.mark.integration
_SUBNET = 10 + os.getpid() % 240  # 10.213.N.0/24: one per test run, so runs never collide


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _netns_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"envd-probe-{os.getpid()}"
    try:
        _ip("netns", "add", probe)
        _ip("netns", "del", probe)
    except (OSError, subprocess.CalledProcessError) as err:
        return f"`ip netns` is not available here: {err}"
    return None


@dataclass
class Network:
    """A bridge in the test's namespace and one namespace per host, each on its own veth."""

    tag: str = f"e{os.getpid() % 100000}"
    hosts: dict[str, str] = field(default_factory=dict)  # namespace → address

    @property
    def bridge(self) -> str:
        return f"{self.tag}br"

    @property
    def gateway(self) -> str:
        return f"10.213.{_SUBNET}.1"

    def up(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def add_host(self, name: str) -> str:
        number = len(self.hosts) + 2
        namespace, address = f"{self.tag}{name}", f"10.213.{_SUBNET}.{number}"
        outside, inside = f"{self.tag}{name}h", f"{self.tag}{name}n"
        _ip("netns", "add", namespace)
        self.hosts[namespace] = address
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", namespace)
        for args in (("addr", "add", f"{address}/24", "dev", inside),
                     ("link", "set", inside, "up"), ("link", "set", "lo", "up")):  # fmt: skip
            _ip("netns", "exec", namespace, "ip", *args)
        _ip("link", "set", outside, "master", self.bridge)
        _ip("link", "set", outside, "up")
        return namespace

    def link(self, namespace: str, up: bool) -> None:
        """Cut (or restore) a host's only link: packets are dropped, nothing is refused."""
        _ip("link", "set", f"{namespace}h", "up" if up else "down")

    def block(self, namespace: str, address: str) -> None:
        """Cut one host off from one address only (a route that drops its packets)."""
        _ip("netns", "exec", namespace, "ip", "route", "add", "blackhole", f"{address}/32")

    def down(self) -> None:
        for namespace in self.hosts:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    reason = _netns_unavailable() or postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    net = Network()
    try:
        net.up()
        yield net
    finally:
        net.down()


@pytest.fixture(scope="module")
def database(network: Network) -> Iterator[tuple[PostgresServer, str]]:
    namespace = network.add_host("db")
    address = network.hosts[namespace]
    with start_postgres(listen=address, netns=namespace, trust=f"10.213.{_SUBNET}.0/24") as pg:
        yield pg, address


@pytest.fixture(scope="module")
def bridge_channel(network: Network) -> Iterator[ChannelServer]:
    with serve_channel(EXAMPLE_CHANNEL, host=network.gateway) as server:
        yield server


@pytest.fixture
def state_url(database: tuple[PostgresServer, str], request: pytest.FixtureRequest) -> str:
    server, address = database
    schema = f"n{os.getpid()}_{request.node.name[-12:]}".replace("-", "_").lower()
    server.new_schema(schema)
    return f"postgresql://envd@{address}:5432/envd?options=-csearch_path%3D{schema}"


def spec(channel: ChannelServer, dependency: str) -> Spec:
    return normalize_spec(RawSpec(conda=[RawDependency(dependency)], channels=[channel.url]))


def leased_to(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        rows = conn.execute("SELECT agent_id FROM jobs WHERE status='leased'").fetchall()
    return [str(r[0]) for r in rows]


def start_replica(cluster: Cluster, network: Network, name: str, url: str) -> tuple[Process, str]:
    namespace = network.add_host(name)
    listen = f"{network.hosts[namespace]}:50051"
    process = cluster.start_daemon(listen=listen, state=url, netns=namespace)
    return process, listen


def test_a_partitioned_agent_loses_its_job_its_late_result_is_refused_and_it_serves_again(
    network: Network, state_url: str, bridge_channel: ChannelServer, cluster: Cluster
) -> None:
    _, address = start_replica(cluster, network, "r1", state_url)
    agents = {}
    for name in ("a1", "a2"):
        namespace = network.add_host(name)
        agents[name] = (namespace, cluster.start_agent(name, ["linux-64"], netns=namespace))
    bridge_channel.set_delay(1.5)
    try:
        with EnvdClient(address) as client:
            future = _in_thread(lambda: client.resolve(spec(bridge_channel, "pip"), ["linux-64"],
                                                       no_archives=True))  # fmt: skip
            wait_for(lambda: bool(leased_to(state_url)), 30, "a lease")
            cut = leased_to(state_url)[0]
            network.link(agents[cut][0], up=False)
            result: ResolveResult = future.result(timeout=60)
            network.link(agents[cut][0], up=True)
        event = result.events["linux-64"]
        assert event.stage is Stage.DONE and event.agent != cut
        daemon_log = cluster.processes[0].log
        # healed, it either sends its late result (refused) or first hears that its lease was
        # revoked and cancels the job: which comes first is a race, either is right
        wait_for(lambda: f"rejected late result from agent={cut}" in daemon_log()
                 or "cancelling its job" in agents[cut][1].log(), 30,
                 "the late result refused or the job cancelled")  # fmt: skip
        assert "resolved job=" not in agents[cut][1].log() or (
            f"rejected late result from agent={cut}" in daemon_log()
        )
        # healed, it serves again: the only agent left for the next job
        other = next(name for name in agents if name != cut)
        agents[other][1].stop()
        bridge_channel.set_delay(0.0)
        with EnvdClient(address) as client:
            again = client.resolve(spec(bridge_channel, "six"), ["linux-64"], no_archives=True)
        assert again.events["linux-64"].agent == cut
    finally:
        bridge_channel.set_delay(0.0)


def test_a_replica_cut_off_from_the_database_stops_and_its_clients_move(
    network: Network, database: tuple[PostgresServer, str], state_url: str,
    bridge_channel: ChannelServer, cluster: Cluster,
) -> None:  # fmt: skip
    first, first_address = start_replica(cluster, network, "r2", state_url)
    _, second_address = start_replica(cluster, network, "r3", state_url)
    target = f"ipv4:{first_address},{second_address}"
    cluster.address = target
    namespace = network.add_host("a3")
    cluster.start_agent("a3", ["linux-64"], netns=namespace)
    bridge_channel.set_delay(1.5)
    try:
        with EnvdClient(target, reattach_timeout=60) as client:
            future = _in_thread(lambda: client.resolve(spec(bridge_channel, "wheel"),
                                                       ["linux-64"], no_archives=True))  # fmt: skip
            wait_for(lambda: bool(leased_to(state_url)), 30, "a lease")
            network.block(f"{network.tag}r2", database[1])
            result: ResolveResult = future.result(timeout=60)
    finally:
        bridge_channel.set_delay(0.0)
    assert result.events["linux-64"].stage is Stage.DONE
    wait_for(lambda: first.popen.poll() is not None, 30, "the cut-off replica to stop")
    assert first.popen.returncode != 0
    assert "lost the coordinator state" in first.log()


def _in_thread(fn: Callable[[], ResolveResult]) -> Future[ResolveResult]:
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(fn)
    pool.shutdown(wait=False)
    return future
