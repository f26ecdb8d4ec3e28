"""Archives cached by a resolve, then `create` from the store alone (the channel gone)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from test_cli import one_json, run_client

from harness import ROOT

pytestmark = pytest.mark.e2e
DEMO_CHANNEL = ROOT / "examples" / "channels" / "archives-demo"


def demo_env(folder: Path) -> Path:
    channel = folder / "channel"
    shutil.copytree(DEMO_CHANNEL, channel)
    env_file = folder / "environment.yml"
    env_file.write_text(f"channels:\n  - {channel}\ndependencies:\n  - envd-demo-hello\n")
    return env_file


def test_resolve_caches_and_transmutes_then_create_runs_without_the_channel(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    env_file = demo_env(tmp_path)
    resolved = run_client("resolve", "-f", str(env_file), "--arch", "linux-64", "--json",
                          cwd=tmp_path, env=env)  # fmt: skip
    assert resolved.returncode == 0, resolved.stderr
    (result,) = one_json(resolved)["environments"]
    req_id = one_json(resolved)["req_id"]
    assert result["outcome"] == "resolved"
    shown = json.loads(run_client("show", req_id, "--json", cwd=tmp_path, env=env).stdout)
    formats = shown[0]["formats_in_store"]
    cph = formats["cph_test_data-0.0.1-0.tar.bz2"]
    assert sorted(f["format"] for f in cph) == [".conda", ".tar.bz2"]
    assert all(f["present"] for rows in formats.values() for f in rows)
    transmuted = next(f for f in cph if f["format"] == ".conda")
    assert transmuted["filename"] == "cph_test_data-0.0.1-0.conda"
    assert transmuted["transmuted_from"]
    shutil.rmtree(tmp_path / "channel")  # the store alone must be enough now
    prefix = tmp_path / "env"
    created = run_client("create", req_id, "--arch", "linux-64", "--prefix", str(prefix),
                         "--json", cwd=tmp_path, env=env)  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert one_json(created)["packages"] == [
        "cph_test_data-0.0.1-0.conda",
        "envd-demo-hello-1.0-0.conda",
    ]
    out = subprocess.run([str(prefix / "bin" / "envd-demo-hello")], capture_output=True, text=True)
    assert out.stdout == "hello from an environment envd created from its store alone\n"
    again = run_client("create", req_id, "--arch", "linux-64", "--prefix", str(prefix),
                       cwd=tmp_path, env=env)  # fmt: skip
    assert again.returncode == 2
    assert (
        f"error: failed to create environment in `{prefix}`: the prefix is not empty"
        in again.stderr
    )


def test_create_refuses_another_platform_and_no_archive_environments(tmp_path: Path) -> None:
    env_file = demo_env(tmp_path)
    for arch in ("osx-arm64", "linux-64"):
        extra = ["--no-archives"] if arch == "linux-64" else []
        out = run_client("resolve", "-f", str(env_file), "--arch", arch, *extra, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
    req_id = one_json(run_client("spec", "-f", str(env_file), "--json", cwd=tmp_path))["req_id"]
    other = run_client("create", req_id, "--arch", "osx-arm64", "--prefix", "p", cwd=tmp_path)
    assert other.returncode == 2
    assert "it is for `osx-arm64` and this machine is `linux-64`" in other.stderr
    bare = run_client("create", req_id, "--arch", "linux-64", "--prefix", "p", cwd=tmp_path)
    assert bare.returncode == 4
    assert "(it was resolved with `--no-archives`)" in bare.stderr
    assert not (tmp_path / "p").exists()


def test_an_archive_request_is_not_answered_by_a_no_archives_environment(tmp_path: Path) -> None:
    env_file = demo_env(tmp_path)
    args = ["resolve", "-f", str(env_file), "--arch", "linux-64", "--json"]
    bare = one_json(run_client(*args, "--no-archives", cwd=tmp_path))
    assert bare["environments"][0]["outcome"] == "resolved"
    assert (
        one_json(run_client(*args, "--no-archives", cwd=tmp_path))["environments"][0]["outcome"]
        == "cache_hit"
    )
    cached = one_json(run_client(*args, cwd=tmp_path))["environments"][0]
    assert cached["outcome"] == "resolved"  # the default had no archives: resolved again
    assert cached["full_id"] == bare["environments"][0]["full_id"]
    shown = json.loads(run_client("show", bare["req_id"], "--json", cwd=tmp_path).stdout)
    assert all(rows for rows in shown[0]["formats_in_store"].values())
    assert one_json(run_client(*args, cwd=tmp_path))["environments"][0]["outcome"] == "cache_hit"
