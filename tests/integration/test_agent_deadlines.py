"""Stage deadlines through real envd-daemon and envd-agent processes: a channel that accepts
and never answers, an archive host that stalls, a job past its deadline — each fails the job
naming the stage and the URL, stores nothing, and leaves the agent serving."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envd.client.api import EnvdClient
from envd.progress import Outcome, ResolveEvent
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec
from faulty_channel import (
    ARCHIVE,
    PACKAGE,
    SlowArchiveChannel,
    serve_slow_archive,
    stalled_server,
    write_one_package_channel,
)
from harness import ChannelServer, Cluster

pytestmark = pytest.mark.integration


def spec_of(channel: str, deps: list[str]) -> Spec:
    return normalize_spec(RawSpec(conda=[RawDependency(d) for d in deps], channels=[channel]))


def failed(cluster: Cluster, spec: Spec, *, no_archives: bool) -> tuple[ResolveEvent, float]:
    """The failed event of a linux-64 resolve, and how long the client waited for it."""
    start = time.monotonic()
    with EnvdClient(cluster.address) as client:
        result = client.resolve(spec, ["linux-64"], no_archives=no_archives)
    (event,) = result.events.values()
    assert event.outcome is Outcome.FAILED and event.error is not None, event
    return event, time.monotonic() - start


def stored(cluster: Cluster) -> list[str]:
    store = cluster.root / "store"
    return sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file())


def temp_files(cluster: Cluster, agent: str) -> list[Path]:
    return [p for p in (cluster.root / f"cache-{agent}" / "archives-tmp").rglob("*")]


@pytest.fixture
def slow_channel(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SlowArchiveChannel]:
    folder = tmp_path / "channel"
    write_one_package_channel(folder)
    with serve_slow_archive(folder, request.param) as served:
        yield served


def test_a_stalled_channel_fails_the_job_naming_its_url_and_the_agent_goes_on(
    cluster: Cluster, channel: ChannelServer
) -> None:
    cluster.start_daemon()
    cluster.start_agent("agent", ["linux-64"], args=["--repodata-timeout", "2"])
    with stalled_server() as stalled:
        event, waited = failed(cluster, spec_of(stalled.url, ["python"]), no_archives=True)
    assert event.error is not None and event.error.reference == "E204"
    assert event.error.message == (
        f"timed out fetching repodata from `{stalled.url}` for `linux-64` (and `noarch`): "
        "not done within 2 s"
    )
    assert 2.0 <= waited < 10.0
    assert stored(cluster) == []
    with EnvdClient(cluster.address) as client:  # the same agent resolves the next job
        result = client.resolve(spec_of(channel.url, ["python=3.9"]), ["linux-64"],
                                no_archives=True)  # fmt: skip
    assert [e.outcome for e in result.events.values()] == [Outcome.RESOLVED]


@pytest.mark.parametrize("slow_channel", ["stall"], indirect=True)
def test_an_archive_host_that_stalls_fails_the_job_after_its_attempts(
    cluster: Cluster, slow_channel: SlowArchiveChannel
) -> None:
    cluster.start_daemon()
    cluster.start_agent("agent", ["linux-64"], args=["--fetch-timeout", "0.5"])
    event, waited = failed(cluster, spec_of(slow_channel.url, [PACKAGE]), no_archives=False)
    assert event.error is not None and event.error.reference == "E204"
    assert event.error.message == (
        f"timed out fetching archive `{slow_channel.url}/noarch/{ARCHIVE}`: no data for 0.5 s "
        "(attempt 4 of 4)"
    )
    assert 2.0 <= waited < 15.0  # 4 attempts of 0.5 s, and backoff between them
    assert stored(cluster) == [] and temp_files(cluster, "agent") == []


@pytest.mark.parametrize("slow_channel", ["trickle"], indirect=True)
def test_a_job_past_its_deadline_fails_naming_the_stage(
    cluster: Cluster, slow_channel: SlowArchiveChannel
) -> None:
    cluster.start_daemon()
    cluster.start_agent("agent", ["linux-64"], args=["--job-timeout", "1.5"])
    event, waited = failed(cluster, spec_of(slow_channel.url, [PACKAGE]), no_archives=False)
    assert event.error is not None and event.error.reference == "E204"
    assert event.error.message == (
        f"timed out running job `{event.job_id}` for `linux-64` while caching archives: "
        "not done within 1.5 s"
    )
    assert 1.5 <= waited < 10.0
    assert stored(cluster) == [] and temp_files(cluster, "agent") == []
