"""Real envd-daemon and envd-agent processes on loopback, with the example channel over HTTP."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import pytest

from envd.client.api import EnvdClient, ResolveResult
from envd.progress import Outcome, ResolveEvent, Stage
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec
from harness import (
    EXAMPLE_CHANNEL,
    ROOT,
    ChannelServer,
    Cluster,
    free_port,
    serve_channel,
    wait_for,
)
from solution_check import check_solution

pytestmark = pytest.mark.integration
PLATFORMS = ["linux-64", "osx-arm64"]


def python_spec(channel_url: str, python: str = "3.9") -> Spec:
    return normalize_spec(
        RawSpec(conda=[RawDependency(f"python={python}")], channels=[channel_url])
    )


def outcomes(result: ResolveResult) -> dict[str, Outcome | None]:
    return {p: e.outcome for p, e in result.events.items()}


def test_resolves_two_platforms_each_solution_valid(
    cluster: Cluster, channel: ChannelServer
) -> None:
    cluster.start_daemon()
    cluster.start_agent("agent-linux", ["linux-64"])
    cluster.start_agent("agent-mac", ["osx-arm64"])
    with EnvdClient(cluster.address) as client:
        result = client.resolve(python_spec(channel.url), PLATFORMS, no_archives=True)
    assert outcomes(result) == {"linux-64": Outcome.RESOLVED, "osx-arm64": Outcome.RESOLVED}
    for platform, event in result.events.items():
        assert event.description is not None
        assert event.description["platform"] == platform
        assert event.agent == {"linux-64": "agent-linux", "osx-arm64": "agent-mac"}[platform]
        check_solution(event.description, EXAMPLE_CHANNEL, ["python 3.9.*"])
        stored = cluster.root / "store" / "envs" / result.req_id / platform
        assert (stored / f"{event.full_id}.json").exists()


def test_fifty_identical_requests_share_one_job_per_platform(
    cluster: Cluster, channel: ChannelServer
) -> None:
    cluster.start_daemon()
    accepted = threading.Semaphore(0)
    results: list[ResolveResult] = []

    def on_event(event: ResolveEvent) -> None:
        if event.stage is Stage.ACCEPTED:
            accepted.release()

    def request() -> None:
        with EnvdClient(cluster.address) as client:
            results.append(
                client.resolve(
                    python_spec(channel.url), PLATFORMS, on_event=on_event, no_archives=True
                )
            )

    threads = [threading.Thread(target=request) for _ in range(50)]
    for thread in threads:
        thread.start()
    for _ in range(50 * len(PLATFORMS)):  # every request persisted before any agent exists
        assert accepted.acquire(timeout=60)
    agents = [cluster.start_agent("a1", PLATFORMS), cluster.start_agent("a2", PLATFORMS)]
    for thread in threads:
        thread.join(timeout=90)
    assert len(results) == 50
    for platform in PLATFORMS:
        seen = [r.events[platform].outcome for r in results]
        assert seen.count(Outcome.RESOLVED) == 1 and seen.count(Outcome.DEDUP) == 49
        assert len({r.events[platform].full_id for r in results}) == 1
        solves = sum(a.log().count(f"solving platform={platform} ") for a in agents)
        assert solves == 1, f"{solves} solves for {platform}"


def _slow_request(
    cluster: Cluster, slow: ChannelServer
) -> tuple[threading.Thread, list[ResolveResult], list[ResolveEvent]]:
    results: list[ResolveResult] = []
    events: list[ResolveEvent] = []

    def run() -> None:
        with EnvdClient(cluster.address) as client:
            results.append(
                client.resolve(
                    python_spec(slow.url), ["linux-64"], on_event=events.append, no_archives=True
                )
            )

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: any(e.stage is Stage.LEASED and e.agent for e in events), 30, "a lease")
    return thread, results, events


def test_kill9_of_agent_holding_job_lets_another_finish(cluster: Cluster) -> None:
    with serve_channel(EXAMPLE_CHANNEL) as slow:
        slow.set_delay(3.0)
        cluster.start_daemon(lease_ttl=5.0)
        agents = {n: cluster.start_agent(n, ["linux-64"]) for n in ("agent-a", "agent-b")}
        thread, results, events = _slow_request(cluster, slow)
        holder = next(e.agent for e in events if e.stage is Stage.LEASED and e.agent)
        agents[holder].kill9()
        thread.join(timeout=60)
        (event,) = results[0].events.values()
        survivor = ({"agent-a", "agent-b"} - {holder}).pop()
        assert event.outcome is Outcome.RESOLVED and event.agent == survivor
        assert any("disconnected" in e.message for e in events if e.stage is Stage.QUEUED)


def test_sigstop_agent_lease_expires_and_its_revoked_job_really_stops(cluster: Cluster) -> None:
    """The holder is frozen mid-fetch until its lease expires; once thawed it hears the
    revocation before its (slow) fetch could finish, cancels the job and never reports it."""
    with serve_channel(EXAMPLE_CHANNEL) as slow:
        slow.set_delay(6.0)
        daemon = cluster.start_daemon(lease_ttl=1.5, heartbeat=0.2)
        agents = {n: cluster.start_agent(n, ["linux-64"]) for n in ("agent-a", "agent-b")}
        thread, results, events = _slow_request(cluster, slow)
        holder = next(e.agent for e in events if e.stage is Stage.LEASED and e.agent)
        agents[holder].signal(signal.SIGSTOP)
        wait_for(lambda: any("expired" in e.message for e in events if e.stage is Stage.QUEUED),
                 30, "the frozen holder's lease to expire")  # fmt: skip
        agents[holder].signal(signal.SIGCONT)
        wait_for(lambda: "cancelling its job" in agents[holder].log(), 10,
                 "the thawed holder to cancel its revoked job")  # fmt: skip
        thread.join(timeout=60)
        (event,) = results[0].events.values()
        survivor = ({"agent-a", "agent-b"} - {holder}).pop()
        assert event.outcome is Outcome.RESOLVED and event.agent == survivor
        assert "resolved job=" not in agents[holder].log()
        assert "rejected late result" not in daemon.log()
        with EnvdClient(cluster.address) as client:
            description, is_default = client.get_environment(
                req_id=event.req_id, platform="linux-64"
            )
        assert is_default and description["full_id"] == event.full_id
        assert description["resolved_by"]["agent"] == survivor


def test_daemon_kill9_with_queued_jobs_then_restart_completes_them(
    cluster: Cluster, channel: ChannelServer
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    daemon = cluster.start_daemon(listen=listen)
    specs = [python_spec(channel.url), python_spec(channel.url, "3.9.19")]
    with EnvdClient(cluster.address) as client:
        queued = [client.resolve(s, PLATFORMS, no_wait=True, no_archives=True) for s in specs]
    job_ids = [j for r in queued for j in r.job_ids()]
    assert len(job_ids) == 4
    waiting: list[ResolveResult] = []
    waiter = threading.Thread(target=lambda: waiting.append(EnvdClient(listen).wait(job_ids[:2])))
    waiter.start()
    daemon.kill9()
    cluster.start_daemon(listen=listen)
    cluster.start_agent("agent", PLATFORMS, slots=2)
    answers = []
    with EnvdClient(listen) as client:
        for job_id in job_ids:  # every job, one by one: each must have ended resolved
            (event,) = client.wait([job_id]).events.values()
            answers.append(event)
    assert [e.job_id for e in answers] == job_ids
    assert all(e.outcome is Outcome.RESOLVED and len(e.full_id) == 40 for e in answers)
    assert len({(e.req_id, e.platform) for e in answers}) == 4
    waiter.join(timeout=60)
    assert not waiter.is_alive() and len(waiting) == 1  # the client waiting across the kill
    assert {e.job_id: e.full_id for e in waiting[0].events.values()} == {
        e.job_id: e.full_id for e in answers[:2]
    }


def test_second_resolve_is_cache_hit_without_any_agent(
    cluster: Cluster, channel: ChannelServer
) -> None:
    cluster.start_daemon()
    agent = cluster.start_agent("agent", PLATFORMS)
    with EnvdClient(cluster.address) as client:
        first = client.resolve(python_spec(channel.url), PLATFORMS, no_archives=True)
    agent.stop()
    with EnvdClient(cluster.address) as client:
        second = client.resolve(python_spec(channel.url), PLATFORMS, no_archives=True)
    assert set(outcomes(second).values()) == {Outcome.CACHE_HIT}
    assert {p: e.full_id for p, e in first.events.items()} == {
        p: e.full_id for p, e in second.events.items()
    }


def store_files(root: Path) -> list[str]:
    store = root / "store"
    return (
        sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file())
        if store.exists()
        else []
    )


@pytest.mark.parametrize(
    ("specs", "channel_kind", "reference", "words"),
    [
        (
            ["nonexistent-pkg"],
            "http",
            "E200",
            ["`nonexistent-pkg`", "linux-64", "http://127.0.0.1"],
        ),
        (["python>=3.12"], "http", "E201", ["python", "linux-64"]),
        (["python=3.9"], "missing", "E202", ["/tests/fixtures/does-not-exist"]),
        (["python=3.9"], "unreachable", "E202", ["http://127.0.0.1:9"]),
    ],
)
def test_failed_resolutions_explain_and_store_nothing(
    cluster: Cluster, channel: ChannelServer, specs: list[str], channel_kind: str,
    reference: str, words: list[str],
) -> None:  # fmt: skip
    missing = (ROOT / "tests" / "fixtures" / "does-not-exist").as_uri()  # an allowed folder
    url = {"http": channel.url, "missing": missing,
           "unreachable": "http://127.0.0.1:9/chan"}[channel_kind]  # fmt: skip
    cluster.start_daemon()
    cluster.start_agent("agent", ["linux-64"])
    spec = normalize_spec(RawSpec(conda=[RawDependency(s) for s in specs], channels=[url]))
    with EnvdClient(cluster.address) as client:
        result = client.resolve(spec, ["linux-64"])
    (event,) = result.events.values()
    assert event.outcome is Outcome.FAILED and event.error is not None
    assert event.error.reference == reference, event.error.message
    for word in words:
        assert word in event.error.message, event.error.message
    assert "Traceback" not in event.error.message
    assert store_files(cluster.root) == []


def test_request_errors_are_refused_before_any_job(
    cluster: Cluster, channel: ChannelServer
) -> None:
    from envd.errors import (
        ChannelNotAllowedError,
        InvalidSpecError,
        UnknownPlatformError,
    )

    cluster.start_daemon()
    with EnvdClient(cluster.address) as client:
        with pytest.raises(UnknownPlatformError, match="unknown platform `linux-65`") as info:
            client.resolve(python_spec(channel.url), ["linux-65"])
        assert info.value.hint is not None and "osx-arm64" in info.value.hint
        with pytest.raises(InvalidSpecError, match="no target platform"):
            client.resolve(python_spec(channel.url), [])
        # the channel policy: folders only under --allow-local-channels (the harness lists
        # the repo's examples/ and tests/fixtures/), never elsewhere, however spelled
        outside = cluster.root / "not-listed"
        outside.mkdir()
        for sneaky in (str(outside), f"{EXAMPLE_CHANNEL}/../../../..{outside}"):
            with pytest.raises(ChannelNotAllowedError) as refused:
                client.resolve(python_spec(sneaky), ["linux-64"])
            assert "is not allowed by this coordinator" in refused.value.message
        package_channel = normalize_spec(
            RawSpec(conda=[RawDependency(f"file://{outside}::python")], channels=[channel.url])
        )
        with pytest.raises(ChannelNotAllowedError):
            client.resolve(package_channel, ["linux-64"])
    assert store_files(cluster.root) == []
    state = json.dumps(store_files(cluster.root))
    assert "envs" not in state


def test_platform_without_agent_waits_visibly_then_fails(
    cluster: Cluster, channel: ChannelServer
) -> None:
    cluster.start_daemon(no_agent_timeout=1.5)
    cluster.start_agent("mac-only", ["osx-arm64"])
    events: list[ResolveEvent] = []
    with EnvdClient(cluster.address) as client:
        result = client.resolve(python_spec(channel.url), ["linux-64"], on_event=events.append)
    queued = [e.message for e in events if e.stage is Stage.QUEUED]
    assert queued == ["waiting for an agent serving `linux-64` (fails after 1.5 s)"]
    (event,) = result.events.values()
    assert event.outcome is Outcome.FAILED and event.error is not None
    assert event.error.reference == "E300"
    assert event.error.message == "no agent serving `linux-64` connected within 1.5 s"
    assert event.error.hint == (
        "start one with `envd-agent --coordinator ADDR --platform linux-64`"
    )
    assert store_files(cluster.root) == []
