"""`envd-client pre-deploy` as a scheduler runs it, against a real daemon and agent with the
bundled channel over loopback HTTP: a resolvable step, an unsatisfiable one and alias steps;
a non-zero exit naming the failed steps, the table, the JSON result; then the same manifest
through `envd.client.pre_deploy`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_cli import CLIENT, one_json, run_client

from envd.channels import DEFAULT_CHANNEL_ALIAS
from envd.client import pre_deploy
from envd.client.config import ClientConfig
from harness import ChannelServer, Cluster, wait_for

pytestmark = pytest.mark.e2e


def write_manifest(folder: Path, channel: str) -> Path:
    python39 = {"channels": [channel], "packages": ["python=3.9"]}
    steps = [
        {"name": "prepare", "platforms": ["linux-64"], "environment": python39},
        {"name": "broken", "platforms": ["linux-64"],
         "environment": {"channels": [channel], "packages": ["python=3.9", "python=3.8"]}},
        {"name": "train", "platforms": ["linux-64"], "environment": python39},  # the same: one request
        {"name": "serve", "platforms": ["linux-64"], "environment": {"alias": "team/serve:v1"}},
        {"name": "serve-arm", "platforms": ["osx-arm64"],
         "environment": {"alias": "team/serve:v1"}},
    ]  # fmt: skip
    path = folder / "deploy" / "manifest.yaml"
    path.parent.mkdir()
    path.write_text(json.dumps({"version": 1, "name": "nightly", "steps": steps}))  # YAML ⊃ JSON
    return path


def test_pre_deploy_names_every_failed_step_and_writes_the_result(
    tmp_path: Path, cluster: Cluster, channel: ChannelServer
) -> None:
    cluster.start_daemon()
    cluster.start_agent("agent", ["linux-64"])
    env = {"ENVD_COORDINATOR": cluster.address}
    aliased = run_client("resolve", "-c", channel.url, "-p", "python=3.9", "-p", "zlib",
                         "--arch", "linux-64", "--no-archives", "--alias", "team/serve:v1",
                         "--json", cwd=tmp_path, env=env)  # fmt: skip
    assert aliased.returncode == 0, aliased.stderr
    serve_req, serve_full = one_json(aliased)["req_id"], one_json(aliased)["alias"]["full_ids"]
    manifest = write_manifest(tmp_path, channel.url)
    output = tmp_path / "out" / "environments.json"

    done = run_client("pre-deploy", str(manifest), "--output", str(output), "--no-archives",
                      cwd=tmp_path, env=env)  # fmt: skip

    assert done.returncode == 3, done.stderr  # the first failed step's: unsatisfiable
    result = json.loads(output.read_text())
    steps = result["steps"]
    assert list(steps) == ["prepare", "broken", "train", "serve", "serve-arm"]
    assert [s["ok"] for s in steps.values()] == [True, False, True, True, False]
    assert (result["ok"], [f["step"] for f in result["failed"]]) == (False, ["broken", "serve-arm"])
    prepare = steps["prepare"]["platforms"]["linux-64"]
    assert steps["train"]["platforms"]["linux-64"] == prepare
    assert prepare["outcome"] == "resolved"  # one request for both steps: no `dedup`
    store = urlsplit(result["store"]).path
    assert store == str(cluster.root / "store")
    described = Path(urlsplit(prepare["store_url"]).path)
    assert described == Path(store, "envs", prepare["req_id"], "linux-64",
                             prepare["full_id"] + ".json")  # fmt: skip
    assert json.loads(described.read_text())["full_id"] == prepare["full_id"]
    broken = steps["broken"]["platforms"]["linux-64"]
    assert (broken["full_id"], broken["outcome"], broken["store_url"]) == (None, "failed", None)
    assert broken["error"]["reference"] == "E201" == steps["broken"]["error"]["reference"]
    assert "python" in broken["error"]["message"]
    serve = steps["serve"]
    assert (serve["alias"], serve["platforms"]["linux-64"]["outcome"]) == ("team/serve:v1",
                                                                          "confirmed")  # fmt: skip
    assert serve["platforms"]["linux-64"]["req_id"] == serve_req
    assert serve["platforms"]["linux-64"]["full_id"] == serve_full["linux-64"]
    assert Path(urlsplit(serve["platforms"]["linux-64"]["store_url"]).path).is_file()
    assert steps["serve-arm"]["error"] == {
        "reference": "E302",
        "message": "alias `team/serve:v1` names no environment on `osx-arm64`",
        "hint": "it names: `linux-64`; resolve the spec for `osx-arm64` and point the alias "
        "again (`envd-client resolve … --alias team/serve:v1`)",
    }

    short = prepare["req_id"][:12], prepare["full_id"][:12]
    table = done.stdout.split("\n\n")[0].splitlines()
    assert table[0].split() == ["STEP", "PLATFORM", "REQ_ID", "FULL_ID", "OUTCOME"]
    assert [row.split() for row in table[1:]] == [
        ["prepare", "linux-64", *short, "resolved"],
        ["broken", "linux-64", broken["req_id"][:12], "-", "failed"],
        ["train", "linux-64", *short, "resolved"],
        ["serve", "linux-64", serve_req[:12], serve_full["linux-64"][:12], "confirmed"],
        ["serve-arm", "osx-arm64", serve_req[:12], "-", "failed"],
    ]
    assert "2 of 5 step(s) cannot be deployed:\n  broken on linux-64: E201 " in done.stdout
    assert (
        "  serve-arm on osx-arm64: E302 alias `team/serve:v1` names no environment" in done.stdout
    )
    assert done.stderr.startswith("pre-deploy: 5 step(s): 2 environment(s) to resolve, "
                                  "1 alias(es) to confirm\n")  # fmt: skip
    assert done.stderr.endswith(
        "pre-deploy: 3 step(s) ready, 2 failed\n"
        "error: 2 step(s) cannot be deployed: `broken`, `serve-arm`\n"
        "hint: the report above names each step's error\n"
    )

    # the Python API: the same answer, now from the store
    config = ClientConfig(coordinator=cluster.address, store=None, home=tmp_path / "home",
                          channel_alias=DEFAULT_CHANNEL_ALIAS, source="")  # fmt: skip
    again = pre_deploy(manifest, config=config, no_archives=True)
    assert [s.name for s in again.failed_steps] == ["broken", "serve-arm"]
    document = again.to_json()
    assert document["steps"]["prepare"]["platforms"]["linux-64"] == {**prepare,
                                                                      "outcome": "cache_hit"}  # fmt: skip
    assert document["steps"]["serve"] == serve


def test_an_invalid_manifest_resolves_nothing(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text("version: 1\nsteps:\n  - name: train\n    platforms: linux-64\n")
    done = run_client("pre-deploy", str(manifest), "--json", cwd=tmp_path)
    assert done.returncode == 2
    assert one_json(done)["error"]["reference"] == "E160"
    assert done.stderr == (
        f"error: failed to read manifest `{manifest}`: step `train` (steps[0]): `platforms` must "
        "be a non-empty list, e.g. `[linux-64, osx-arm64]`\n"
        "hint: docs/pre-deploy.md describes the manifest: `version: 1` and a list of `steps`\n"
    )
    assert not (tmp_path / "home").exists()  # no embedded coordinator was started


def test_every_environment_is_asked_for_at_once(
    tmp_path: Path, cluster: Cluster, channel: ChannelServer
) -> None:
    """With no agent yet, both environments reach the queue: the requests did not wait for
    each other. The agent then serves both."""
    cluster.start_daemon()
    steps = [
        {"name": name, "platforms": ["linux-64"],
         "environment": {"channels": [channel.url], "packages": packages}}
        for name, packages in (("first", ["python=3.9"]), ("second", ["python=3.9", "zlib"]))
    ]  # fmt: skip
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(json.dumps({"version": 1, "steps": steps}))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ENVD_")}
    environ |= {"ENVD_CONFIG": "", "ENVD_HOME": str(tmp_path / "home"),
                "ENVD_COORDINATOR": cluster.address}  # fmt: skip
    errors = tmp_path / "stderr"
    with errors.open("w") as sink:
        process = subprocess.Popen(
            [CLIENT, "pre-deploy", str(manifest), "--no-archives", "--json"], env=environ,
            stdout=subprocess.PIPE, stderr=sink, text=True,
        )  # fmt: skip
        try:
            queued = ("first: linux-64 queued\n", "second: linux-64 queued\n")
            wait_for(lambda: all(q in errors.read_text() for q in queued), 30, "both queued")
            cluster.start_agent("agent", ["linux-64"])
            out, _ = process.communicate(timeout=60)
        finally:
            process.kill()
    assert process.returncode == 0, errors.read_text()
    result = json.loads(out)
    assert [s["platforms"]["linux-64"]["outcome"] for s in result["steps"].values()] == [
        "resolved",
        "resolved",
    ]
