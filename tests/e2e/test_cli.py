"""envd-client as a user runs it: embedded default, remote coordinator, JSON and exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from harness import EXAMPLE_CHANNEL, ChannelServer, Cluster

pytestmark = pytest.mark.e2e
CLIENT = str(Path(sys.executable).parent / "envd-client")


def run_client(
    *args: str, cwd: Path, env: Mapping[str, str | None] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The CLI in `cwd`, never touching the developer's own home or config: its home is
    `cwd/home` (ENVD_HOME) unless `env` says otherwise (None unsets a variable)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("ENVD_", "CONDA_OVERRIDE"))}
    environ["ENVD_CONFIG"] = ""
    environ["XDG_CONFIG_HOME"] = str(cwd / "xdg")  # never the developer's own config
    environ["ENVD_HOME"] = str(cwd / "home")
    environ.pop("NO_COLOR", None)
    for key, value in (env or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return subprocess.run(
        [CLIENT, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout
    )


def normalized(text: str) -> str:
    """User output with what varies per run (times, job ids, agent names) replaced."""
    text = re.sub(r" {2,}(\d+\.\d s)", r"  \1", text)  # the time column's alignment
    text = re.sub(r"\d+\.\d s", "T s", text)
    text = re.sub(r"job-[0-9a-f]{32}", "JOB", text)
    return re.sub(r"embedded-[\w.-]+-\d+", "AGENT", text)


def one_json(out: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(out.stdout)  # fails unless stdout is exactly one document
    return document


def write_env(folder: Path, body: str) -> Path:
    path = folder / "environment.yml"
    path.write_text(body)
    return path


def python_env(folder: Path, extra: str = "") -> Path:
    return write_env(
        folder,
        f"channels:\n  - {EXAMPLE_CHANNEL}\ndependencies:\n  - python=3.9\n{extra}"
        "platforms:\n  - linux-64\n  - osx-arm64\n",
    )


def test_embedded_resolve_then_cache_hit(tmp_path: Path) -> None:
    env_file = python_env(tmp_path)
    first = run_client("resolve", "-f", str(env_file), "--json", "--no-archives", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    doc = one_json(first)
    assert [e["outcome"] for e in doc["environments"]] == ["resolved", "resolved"]
    assert [e["platform"] for e in doc["environments"]] == ["linux-64", "osx-arm64"]
    assert len(doc["req_id"]) == 40
    for env in doc["environments"]:
        assert len(env["full_id"]) == 40
        names = [p["name"] for p in env["packages"]]
        assert "python" in names and not any(n.startswith("__") for n in names)
        for package in env["packages"]:
            assert set(package) == {"name", "version", "build", "kind", "filename", "url", "sha256"}
            assert package["url"].endswith("/" + package["filename"])
    second = run_client("resolve", "-f", str(env_file), "--json", "--no-archives", cwd=tmp_path)
    again = one_json(second)
    assert [e["outcome"] for e in again["environments"]] == ["cache_hit", "cache_hit"]
    assert [e["full_id"] for e in again["environments"]] == [
        e["full_id"] for e in doc["environments"]
    ]
    assert (tmp_path / "home" / "store" / "envs" / doc["req_id"]).is_dir()


def test_human_output_and_show_and_list(tmp_path: Path) -> None:
    env_file = python_env(tmp_path)
    out = run_client(
        "resolve", "-f", str(env_file), "--arch", "linux-64", "--no-archives", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("### Environment for linux-64 ###\nEnvironment type: conda-only\n")
    ident = next(line for line in out.stdout.splitlines() if line.startswith("Identifier: "))
    req_id, full_id = ident.removeprefix("Identifier: ").split(":")
    assert "Outcome: resolved" in out.stdout
    assert normalized(out.stderr) == (
        "linux-64: new job JOB: accepted (T s)\n"
        "linux-64: new job JOB: queued for one of 1 agent(s) serving `linux-64` (T s)\n"
        "linux-64: new job JOB: leased by agent `AGENT` (T s)\n"
        "linux-64: new job JOB: solving on agent `AGENT` (T s)\n"
        "linux-64: new job JOB: writing description of 23 packages (T s)\n"
        "linux-64: resolved after T s on agent `AGENT`\n"
    )
    assert normalized(out.stdout).endswith(
        f"### Summary ###\nlinux-64  resolved  T s  {req_id}:{full_id}\n"
    )
    shown = run_client("show", full_id, "--json", cwd=tmp_path)
    (entry,) = json.loads(shown.stdout)
    assert entry["description"]["req_id"] == req_id and entry["is_default"] is True
    by_req = run_client("show", req_id, cwd=tmp_path)
    assert f"Identifier: {req_id}:{full_id}" in by_req.stdout
    listed = one_json(run_client("list", "--json", cwd=tmp_path))
    assert listed["environments"] == [
        {
            "req_id": req_id,
            "platform": "linux-64",
            "full_id": full_id,
            "resolved_at": entry["description"]["resolved_at"],
            "is_default": True,
            "env_type": "conda-only",
            "packages": 23,
            "archives": "none",
            "resolved_by": entry["description"]["resolved_by"],
            "channels": [EXAMPLE_CHANNEL.as_uri()],
            "requested": ["python 3.9.*"],
            "lock_platforms": [],
        }
    ]
    resolved_at = entry["description"]["resolved_at"]
    user = entry["description"]["resolved_by"]["user"]
    assert run_client("list", cwd=tmp_path).stdout == (
        "REQ_ID        PLATFORM  TYPE        PKGS  ARCHIVES  RESOLVED              BY"
        + " " * (len(user) - 2)
        + "  DEFAULT  REQUESTED\n"
        f"{req_id[:12]}  linux-64  conda-only    23  none      {resolved_at[:10]} "
        f"{resolved_at[11:16]} UTC  {user:<2}  yes      python 3.9.*\n"
    )


def test_stale_socket_from_a_killed_run_is_cleaned_up(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "daemon.sock").write_text("left behind by kill -9")
    out = run_client(
        "resolve", "-c", str(EXAMPLE_CHANNEL), "-p", "python=3.9", "--arch", "linux-64",
        "--json", "--no-archives", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert one_json(out)["environments"][0]["outcome"] == "resolved"


def test_failed_platform_exits_non_zero_with_json(tmp_path: Path) -> None:
    out = run_client(
        "resolve", "-c", str(EXAMPLE_CHANNEL), "-p", "no-such-package", "--arch", "linux-64",
        "--json", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 3
    (env,) = one_json(out)["environments"]
    assert env["outcome"] == "failed" and env["full_id"] is None
    assert env["error"]["reference"] == "E200"
    assert "`no-such-package`" in env["error"]["message"] and "linux-64" in env["error"]["message"]
    assert not list((tmp_path / "home" / "store").rglob("*.json"))


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    env_file = write_env(tmp_path, "channels:\n  - conda-forge\ndependencies:\n  - [python\n")
    out = run_client("resolve", "-f", str(env_file), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("error: ")
    assert f"{env_file}:4" in out.stderr or f"{env_file}:5" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "home").exists()


def test_unknown_platform_lists_valid_ones(tmp_path: Path) -> None:
    out = run_client("spec", "-p", "numpy", "-c", "conda-forge", "--arch", "linux-65", cwd=tmp_path)
    assert out.returncode == 2
    assert "error: unknown platform `linux-65`" in out.stderr
    assert "hint: valid platforms: " in out.stderr and "osx-arm64" in out.stderr


def test_spec_shows_selectors_per_platform(tmp_path: Path) -> None:
    env_file = write_env(
        tmp_path,
        "channels: [conda-forge]\ndependencies:\n  - numpy>=1.20\n"
        "  - libgfortran  # [linux]\n  - llvm-openmp  # [osx]\n",
    )
    out = run_client(
        "spec", "-f", str(env_file), "--arch", "linux-64", "--arch", "osx-arm64", "--json",
        cwd=tmp_path,
    )  # fmt: skip
    doc = one_json(out)
    assert doc["platforms"]["linux-64"]["conda"] == ["libgfortran", "numpy >=1.20"]
    assert doc["platforms"]["osx-arm64"]["conda"] == ["llvm-openmp", "numpy >=1.20"]
    inline = run_client(
        "spec", "-c", "conda-forge", "-p", "numpy >=1.20", "--json", "--arch", "linux-64",
        cwd=tmp_path,
    )  # fmt: skip
    assert one_json(inline)["req_id"] != doc["req_id"]  # the selectors are part of the spec


def test_virtual_package_override_from_flag_or_environment(tmp_path: Path) -> None:
    # llvm-openmp >=18.1.4 on osx-arm64 needs `__osx >=11.0`; envd's default is 11.0
    args = [
        "-c",
        str(EXAMPLE_CHANNEL),
        "-p",
        "llvm-openmp>=18.1.4",
        "--arch",
        "osx-arm64",
        "--json",
    ]
    plain = one_json(run_client("spec", *args, cwd=tmp_path))["req_id"]
    flag = one_json(run_client("spec", *args, "--virtual-package", "__osx=10.15", cwd=tmp_path))
    env = one_json(run_client("spec", *args, cwd=tmp_path, env={"CONDA_OVERRIDE_OSX": "10.15"}))
    assert flag["req_id"] == env["req_id"] != plain
    default = run_client("resolve", *args, "--no-archives", cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    (package,) = one_json(default)["environments"][0]["packages"]
    assert package["filename"] == "llvm-openmp-18.1.5-hde57baf_0.conda"
    out = run_client(
        "resolve", *args, "--virtual-package", "__osx=10.15", "--no-archives", cwd=tmp_path
    )
    (result,) = one_json(out)["environments"]
    assert out.returncode == 3 and result["outcome"] == "failed"
    assert "__osx" in result["error"]["message"]


def test_remote_no_wait_then_wait_and_config_precedence(
    tmp_path: Path, cluster: Cluster, channel: ChannelServer
) -> None:
    cluster.start_daemon()
    args = ["-c", channel.url, "-p", "python=3.9", "--arch", "linux-64", "--json"]
    config = tmp_path / "config.toml"
    config.write_text('coordinator = "127.0.0.1:1"\n')
    refused = run_client("resolve", *args, cwd=tmp_path, env={"ENVD_CONFIG": str(config)})
    assert refused.returncode == 5 and one_json(refused)["error"]["reference"] == "E304"
    assert refused.stderr.startswith(
        "error: failed to reach the coordinator at `127.0.0.1:1`: connection refused\n"
    )
    env = {"ENVD_CONFIG": str(config), "ENVD_COORDINATOR": cluster.address}
    accepted = one_json(
        run_client("resolve", *args, "--no-wait", "--no-archives", cwd=tmp_path, env=env)
    )
    (job,) = accepted["environments"]
    assert job["status"] == "accepted" and job["job_id"].startswith("job-")
    cluster.start_agent("agent", ["linux-64"])
    flag_wins = run_client(
        "--coordinator", cluster.address, "wait", job["job_id"], "--json", cwd=tmp_path,
        env={"ENVD_CONFIG": str(config), "ENVD_COORDINATOR": "127.0.0.1:1"},
    )  # fmt: skip
    (done,) = one_json(flag_wins)["environments"]
    assert done["outcome"] == "resolved" and len(done["full_id"]) == 40


def test_bad_config_file_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('coordinatr = "x:1"\n')
    out = run_client("list", cwd=tmp_path, env={"ENVD_CONFIG": str(config)})
    assert out.returncode == 2
    assert f"error: unknown key `coordinatr` in config `{config}`" in out.stderr


def test_show_unknown_or_malformed_id(tmp_path: Path) -> None:
    missing = run_client("show", "a" * 40, cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr == (
        f"error: no environment with id `{'a' * 40}`\n"
        f"hint: `envd-client list` shows what the store `{(tmp_path / 'home' / 'store').as_uri()}` "
        "holds\n"
    )
    malformed = run_client("show", "not-an-id", cwd=tmp_path)
    assert malformed.returncode == 2
    assert "error: `not-an-id` is not an environment id" in malformed.stderr
