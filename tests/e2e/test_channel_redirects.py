"""A channel whose repodata `base_url` sends archive downloads elsewhere (local files, another
host), against a real daemon and agent: the job fails with ChannelNotAllowedError (E205) before
anything is fetched, nothing is stored, and no file outside the channel is read or named."""

from __future__ import annotations

import hashlib
import json
import shutil
from contextlib import ExitStack
from pathlib import Path

import pytest

from envd.client.api import EnvdClient
from envd.progress import Outcome
from envd.spec_input import load_spec
from harness import ROOT, ChannelServer, Cluster, serve_channel

pytestmark = pytest.mark.e2e
DEMO = ROOT / "examples" / "channels" / "archives-demo"
ARCHIVES = ("cph_test_data-0.0.1-0.tar.bz2", "envd-demo-hello-1.0-0.conda")
SECRET = b"a file of the agent's host that no channel serves\n"


def redirected_channel(folder: Path, base_url: str) -> Path:
    """The demo channel with its noarch repodata's `base_url` set (repodata v2)."""
    shutil.copytree(DEMO, folder)
    path = folder / "noarch" / "repodata.json"
    repodata = json.loads(path.read_text())
    repodata["info"]["base_url"] = base_url
    repodata["repodata_version"] = 2
    path.write_text(json.dumps(repodata))
    return folder


def test_a_base_url_outside_the_channel_fails_the_job_before_any_fetch(
    tmp_path: Path, cluster: Cluster
) -> None:
    outside = tmp_path / "outside"  # holds files named like the archives: what a fetch would read
    outside.mkdir()
    for name in ARCHIVES:
        (outside / name).write_bytes(SECRET)
    with ExitStack() as stack:
        other_host = stack.enter_context(serve_channel(DEMO))
        cases: dict[str, ChannelServer] = {}
        for name, base_url in [
            ("etc", "file:///etc"),
            ("outside", outside.as_uri()),
            # the same bytes from another host: they would pass every hash check
            ("other-host", other_host.url.replace("127.0.0.1", "localhost") + "/noarch"),
        ]:
            folder = redirected_channel(tmp_path / f"channel-{name}", base_url)
            cases[name] = stack.enter_context(serve_channel(folder))
        cluster.start_daemon()
        agent = cluster.start_agent("agent", ["linux-64"])
        events = {}
        with EnvdClient(cluster.address) as client:
            for name, channel in cases.items():
                spec = load_spec(packages=["envd-demo-hello"], channels=[channel.url]).spec
                events[name] = client.resolve(spec, ["linux-64"]).events["linux-64"]
    for name, channel in cases.items():
        event = events[name]
        assert event.outcome is Outcome.FAILED and event.error is not None, (name, event)
        assert event.error.reference == "E205"
        assert event.error.message == (
            f"an archive URL in the repodata of channel `{channel.url}/` points outside the "
            "channel (package `cph_test_data` 0.0.1): nothing was fetched"
        )
        assert event.error.hint == (
            "the channel's `base_url` must point at the channel's own host (or folder)"
        )
        assert not any(path.endswith((".conda", ".bz2")) for path in channel.requests), name
    assert other_host.requests == []  # not one request reached the other host
    store = tmp_path / "store"
    assert not (store / "pkgs").exists() and not (store / "envs").exists()
    assert list((tmp_path / "cache-agent" / "archives-tmp").glob("*")) == []
    secret_sha256 = hashlib.sha256(SECRET).hexdigest()
    assert secret_sha256 not in agent.log() and "Traceback" not in agent.log()
