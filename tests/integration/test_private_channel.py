"""A private channel: the agent's token reaches repodata and archive requests of its origin
(host and port) — over plain http only when the operator marks it — and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.client.api import EnvdClient
from envd.progress import Outcome
from envd.spec_input import load_spec
from harness import ROOT, Cluster, serve_channel

pytestmark = pytest.mark.integration
TOKEN = "s3cr3t-token"


@pytest.mark.parametrize(
    ("tokens", "marked", "resolved"),
    [
        ("{origin}={token}", True, True),  # its origin, marked plain-http: sent
        ("127.0.0.1={token}", True, False),  # a bare host means port 443 (80): not this port
        ("{origin}={token}", False, False),  # plain http the operator did not mark: not sent
        ("", True, False),  # no token at all
    ],
)
def test_private_channel_needs_the_agents_token_for_its_origin(
    tokens: str, marked: bool, resolved: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve_channel(ROOT / "examples" / "channels" / "archives-demo") as channel:
        channel.require_token(TOKEN)
        origin = channel.url.removeprefix("http://")
        monkeypatch.setenv("ENVD_CHANNEL_TOKEN", tokens.format(origin=origin, token=TOKEN))
        monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
        monkeypatch.delenv("ENVD_PLAIN_HTTP_HOSTS", raising=False)
        cluster = Cluster(tmp_path)
        try:
            daemon = cluster.start_daemon()
            flags = ["--plain-http-host", origin] if marked else []
            agent = cluster.start_agent("agent", ["linux-64"], args=flags)
            spec = load_spec(packages=["envd-demo-hello"], channels=[channel.url]).spec
            with EnvdClient(cluster.address) as client:
                event = client.resolve(spec, ["linux-64"]).events["linux-64"]
        finally:
            cluster.stop()
    if resolved:
        assert event.outcome is Outcome.RESOLVED, event.error
        assert any(p.endswith(".tar.bz2") for p in channel.requests)  # archives fetched too
        assert set(channel.authorizations) == {f"Bearer {TOKEN}"}
    else:
        assert event.outcome is Outcome.FAILED and event.error is not None
        assert event.error.reference == "E202" and channel.url in event.error.message
        assert channel.authorizations == []  # the token never went over the wire
    for process in (daemon, agent):
        assert TOKEN not in process.log()
    assert TOKEN not in "".join(p.read_text() for p in (tmp_path / "store").rglob("*.json"))
