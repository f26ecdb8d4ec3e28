"""Jobs across process boundaries: SIGTERM of the daemon and of an agent mid-job, an agent
that reconnects within the TTL keeping its lease, and the embedded default's ghost job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from envd.client.api import EnvdClient, ResolveResult
from envd.progress import Outcome, ResolveEvent, Stage
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec
from harness import EXAMPLE_CHANNEL, ChannelServer, Cluster, free_port, serve_channel, wait_for

pytestmark = pytest.mark.integration
CLIENT = str(Path(sys.executable).parent / "envd-client")


def python_spec(channel_url: str) -> Spec:
    return normalize_spec(RawSpec(conda=[RawDependency("python=3.9")], channels=[channel_url]))


def _request_in_background(
    address: str, channel: ChannelServer
) -> tuple[threading.Thread, list[ResolveResult], list[ResolveEvent]]:
    results: list[ResolveResult] = []
    events: list[ResolveEvent] = []

    def run() -> None:
        with EnvdClient(address) as client:
            results.append(
                client.resolve(
                    python_spec(channel.url), ["linux-64"], on_event=events.append,
                    no_archives=True,
                )
            )  # fmt: skip

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: any(e.stage is Stage.LEASED and e.agent for e in events), 30, "a lease")
    return thread, results, events


def test_sigterm_of_the_daemon_mid_job_then_restart_keeps_the_agents_lease(
    cluster: Cluster,
) -> None:
    """The daemon stops within seconds without a traceback, the waiting client re-attaches by
    job id, and the agent reconnects to the restarted daemon presenting its lease: the job is
    finished by the same agent under the same lease (a blip throws no work away)."""
    listen = f"127.0.0.1:{free_port()}"
    with serve_channel(EXAMPLE_CHANNEL) as slow:
        slow.set_delay(4.0)
        daemon = cluster.start_daemon(listen=listen, lease_ttl=15.0, heartbeat=0.3)
        agent = cluster.start_agent("agent-a", ["linux-64"])
        thread, results, _events = _request_in_background(listen, slow)
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        assert daemon.popen.wait(timeout=10) == 0
        assert time.monotonic() - started < 8
        assert "Traceback" not in daemon.log() and "CancelledError" not in daemon.log()
        restarted = cluster.start_daemon(listen=listen, lease_ttl=15.0, heartbeat=0.3)
        thread.join(timeout=60)
    (event,) = results[0].events.values()
    assert event.outcome is Outcome.RESOLVED and event.agent == "agent-a"
    assert "kept 1 lease(s)" in restarted.log()
    assert agent.log().count("leased job=") == 1  # never assigned again
    assert "requeued" not in restarted.log()


def test_sigterm_of_an_agent_mid_job_releases_it_to_another(cluster: Cluster) -> None:
    with serve_channel(EXAMPLE_CHANNEL) as slow:
        slow.set_delay(3.0)
        daemon = cluster.start_daemon(lease_ttl=60.0)  # expiry would take a minute
        agents = {n: cluster.start_agent(n, ["linux-64"]) for n in ("agent-a", "agent-b")}
        thread, results, events = _request_in_background(cluster.address, slow)
        holder = next(e.agent for e in events if e.stage is Stage.LEASED and e.agent)
        agents[holder].signal(signal.SIGTERM)
        assert agents[holder].popen.wait(timeout=10) == 0
        thread.join(timeout=60)
    (event,) = results[0].events.values()
    survivor = ({"agent-a", "agent-b"} - {holder}).pop()
    assert event.outcome is Outcome.RESOLVED and event.agent == survivor
    assert f"agent `{holder}` released it: agent stopping" in daemon.log()
    assert "released 1 lease(s)" in agents[holder].log()
    assert "Traceback" not in agents[holder].log()


def test_a_killed_embedded_client_leaves_no_ghost_job(tmp_path: Path) -> None:
    """kill -9 of `envd-client` mid-job leaves a job leased to an agent that died with it;
    the next run in that home queues it again at once instead of waiting out the TTL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVD_")}
    env |= {"ENVD_CONFIG": "", "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
            "ENVD_HOME": str(tmp_path / ".envd")}  # fmt: skip
    with serve_channel(EXAMPLE_CHANNEL) as slow:
        slow.set_delay(30.0)
        argv = [CLIENT, "-v", "resolve", "-c", slow.url, "-p", "python=3.9", "--arch",
                "linux-64", "--no-archives"]  # fmt: skip
        first = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)  # fmt: skip
        wait_for(lambda: any("repodata" in p for p in slow.requests), 60, "the first solve")
        first.kill()
        first.communicate(timeout=10)
        slow.set_delay(0.0)
        second = subprocess.run([*argv, "--json"], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=120)  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert "restart: 1 leased job(s) queued again" in second.stderr


def test_a_damaged_state_file_is_refused_at_start_then_recovered(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    state.write_bytes(b"\x00garbage" * 512)
    argv = [str(Path(sys.executable).parent / "envd-daemon"), "--listen", "127.0.0.1:0",
            "--store", str(tmp_path / "store"), "--state", str(state),
            "--ready-file", str(tmp_path / "ready")]  # fmt: skip
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 6
    assert f"error: failed to open the coordinator state `{state}`: file is not a database" in (
        refused.stderr
    )
    assert "Traceback" not in refused.stderr and "--recover" in refused.stderr
    recovered = subprocess.Popen([*argv, "--recover"], stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (tmp_path / "ready").exists(), 30, "the recovered daemon")
    finally:
        recovered.terminate()
        _, err = recovered.communicate(timeout=10)
    assert "was damaged: moved to" in err
    assert [p.name for p in tmp_path.glob("state.sqlite.damaged-*")] != []
