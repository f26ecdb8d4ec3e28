"""The whole path on each real cloud emulator: daemon `--store s3://|gs://|az://`, an agent that
learns the store from the coordinator, archives cached there, then `create` from it alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulator_azure import start_azurite
from emulator_gcs import start_fake_gcs
from emulator_s3 import start_moto
from envd.store.url import open_store
from harness import BIN, ROOT, Cluster, serve_channel

pytestmark = pytest.mark.integration
DEMO_CHANNEL = ROOT / "examples" / "channels" / "archives-demo"


@dataclass
class CloudStore:
    url: str
    env: dict[str, str]


@contextmanager
def cloud(kind: str, workdir: Path) -> Iterator[CloudStore]:
    """An emulator with one bucket/container, and the env vars its SDK's standard chain reads."""
    if kind == "s3":
        with start_moto(workdir) as moto:
            moto.create_bucket("envd")
            yield CloudStore("s3://envd/team-a", {
                "AWS_ENDPOINT_URL": moto.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": str(workdir / "none"),
                "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "none"),
            })  # fmt: skip
    elif kind == "gs":
        with start_fake_gcs(workdir) as gcs:
            gcs.create_bucket("envd")
            yield CloudStore("gs://envd/team-a", {"STORAGE_EMULATOR_HOST": gcs.endpoint})
    else:
        if shutil.which("node") is None or not (ROOT / "node_modules").is_dir():
            pytest.skip("Azurite is missing: `make test` installs it (npm ci)")
        with start_azurite(workdir) as azurite:
            azurite.create_container("envd")
            yield CloudStore(
                "az://envd/team-a",
                {"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string},
            )


@pytest.mark.parametrize("kind", ["s3", "gs", "az"])
def test_archives_land_in_the_cloud_store_and_create_uses_it(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ExitStack() as stack:
        store = stack.enter_context(cloud(kind, tmp_path))
        for name, value in store.env.items():  # daemon, agent and client inherit them
            monkeypatch.setenv(name, value)
        cluster = Cluster(tmp_path)
        stack.callback(cluster.stop)
        cluster.start_daemon(store_url=store.url)
        agent = cluster.start_agent("agent", ["linux-64"])
        assert f"store={store.url}" in agent.log()  # learnt from the coordinator

        with serve_channel(DEMO_CHANNEL) as channel:
            args = ["-c", channel.url, "-p", "envd-demo-hello", "--arch", "linux-64", "--json"]
            first = _client(cluster, tmp_path, "resolve", *args)
            (env,) = first["environments"]
            assert env["outcome"] == "resolved", env
            keys = open_store(store.url).list("")
            assert sum(k.startswith("pkgs/") for k in keys) == 3  # 2 originals + 1 transmuted
            assert sum(k.startswith("links/") for k in keys) == 1
            assert f"defaults/{first['req_id']}/linux-64.json" in keys
            again = _client(cluster, tmp_path, "resolve", *args)
            assert again["environments"][0]["outcome"] == "cache_hit"
            served = len(channel.requests)
        # the channel is gone: `create` can only have used the store
        assert served > 0
        prefix = tmp_path / "env"
        created = _client(cluster, tmp_path, "create", first["req_id"], "--prefix", str(prefix),
                          "--json")  # fmt: skip
        assert created["packages"] == ["cph_test_data-0.0.1-0.conda", "envd-demo-hello-1.0-0.conda"]
        out = subprocess.run([str(prefix / "bin" / "envd-demo-hello")], capture_output=True,
                             text=True, check=True)  # fmt: skip
        assert out.stdout.startswith("hello from an environment envd created")


def _client(cluster: Cluster, cwd: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cwd / "client-cache"), "ENVD_CONFIG": ""}
    env["XDG_CONFIG_HOME"] = str(cwd / "xdg")
    out = subprocess.run(
        [str(BIN / "envd-client"), "--coordinator", cluster.address, *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    document: dict[str, Any] = json.loads(out.stdout)
    return document
