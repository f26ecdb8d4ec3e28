"""A private channel: the agent's token reaches repodata and archive requests, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.client.api import EnvdClient
from envd.progress import Outcome
from envd.spec_input import load_spec
from harness import ROOT, Cluster, serve_channel

pytestmark = pytest.mark.integration
TOKEN = "s3cr3t-token"


@pytest.mark.parametrize("with_token", [True, False])
def test_private_channel_needs_the_agents_token(
    with_token: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve_channel(ROOT / "examples" / "channels" / "archives-demo") as channel:
        channel.require_token(TOKEN)
        if with_token:
            monkeypatch.setenv("ENVD_CHANNEL_TOKEN", f"127.0.0.1={TOKEN}")
        monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
        cluster = Cluster(tmp_path)
        try:
            daemon = cluster.start_daemon()
            agent = cluster.start_agent("agent", ["linux-64"])
            spec = load_spec(packages=["envd-demo-hello"], channels=[channel.url]).spec
            with EnvdClient(cluster.address) as client:
                event = client.resolve(spec, ["linux-64"]).events["linux-64"]
        finally:
            cluster.stop()
    if with_token:
        assert event.outcome is Outcome.RESOLVED, event.error
        assert any(p.endswith(".tar.bz2") for p in channel.requests)  # archives fetched too
    else:
        assert event.outcome is Outcome.FAILED and event.error is not None
        assert event.error.reference == "E202" and channel.url in event.error.message
    for process in (daemon, agent):
        assert TOKEN not in process.log()
    assert TOKEN not in "".join(p.read_text() for p in (tmp_path / "store").rglob("*.json"))
