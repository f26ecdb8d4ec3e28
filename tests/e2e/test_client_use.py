"""envd-client as people use it: a per-user home, read-only commands that create nothing,
`info`, flags after the command, help, completion and short ids."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_cli import normalized, one_json, python_env, run_client

from harness import EXAMPLE_CHANNEL, ROOT, Cluster

pytestmark = pytest.mark.e2e
SPECS = ROOT / "tests" / "fixtures" / "specs"
COMMANDS = ["resolve", "spec", "show", "list", "create", "wait", "info", "completion", "alias",
            "delete", "gc"]  # fmt: skip


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if "xdg" not in p.parts)


def test_per_user_home_answers_from_any_folder(tmp_path: Path) -> None:
    first, second = tmp_path / "project-a", tmp_path / "project-b"
    first.mkdir()
    second.mkdir()
    env_file = python_env(tmp_path)
    data = tmp_path / "data"
    env: dict[str, str | None] = {"ENVD_HOME": None, "XDG_DATA_HOME": str(data)}
    args = ("resolve", "-f", str(env_file), "--no-archives", "--json")
    resolved = run_client(*args, cwd=first, env=env)
    assert resolved.returncode == 0, resolved.stderr
    assert {e["outcome"] for e in one_json(resolved)["environments"]} == {"resolved"}
    again = run_client(*args, cwd=second, env=env)
    assert {e["outcome"] for e in one_json(again)["environments"]} == {"cache_hit"}
    assert (data / "envd" / "store" / "envs").is_dir() and (data / "envd" / "state.sqlite").exists()
    assert files_under(first) == files_under(second) == []  # no ./.envd/ anywhere
    # without XDG_DATA_HOME, the home is ~/.local/share/envd
    user = tmp_path / "user"
    listed = run_client("list", cwd=first, env={"ENVD_HOME": None, "HOME": str(user)})
    store = (user / ".local" / "share" / "envd" / "store").as_uri()
    assert listed.stdout == f"no environments in the store `{store}`\n"


def test_read_only_commands_create_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for args in (["list"], ["list", "--json"], ["show", "0123abcd"], ["info"], ["info", "--json"],
                 ["--version"], ["--help"], *([c, "--help"] for c in COMMANDS)):  # fmt: skip
        out = run_client(*args, cwd=tmp_path)
        assert out.returncode in (0, 2), (args, out.stderr)
        assert not home.exists(), args
    assert files_under(tmp_path) == []
    store = (home / "store").as_uri()
    assert run_client("list", cwd=tmp_path).stdout == f"no environments in the store `{store}`\n"
    assert one_json(run_client("list", "--json", cwd=tmp_path)) == {
        "store": store,
        "environments": [],
    }


def test_info_of_the_embedded_default(tmp_path: Path) -> None:
    out = run_client("info", cwd=tmp_path)
    home = tmp_path / "home"
    assert out.returncode == 0, out.stderr
    assert out.stdout == (
        "version:       envd-client 0.1.0\n"
        "coordinator:   embedded (none configured: --coordinator or ENVD_COORDINATOR)\n"
        f"home:          {home} (not created yet)  [from ENVD_HOME]\n"
        f"store:         {(home / 'store').as_uri()}\n"
        f"state:         {home / 'state.sqlite'} (not created yet)\n"
        "agents:        the embedded agent, started with each command that resolves; serves "
        "every platform\n"
        "this machine:  linux-64\n"
    )
    doc = one_json(run_client("--home", ".envd", "info", "--json", cwd=tmp_path))
    assert doc["home"] == str(tmp_path / ".envd") and doc["home_source"] == "--home"
    assert doc["mode"] == "embedded" and doc["state_exists"] is False
    assert "linux-64" in doc["platforms"] and not (tmp_path / ".envd").exists()


def test_global_flags_before_or_after_the_command(tmp_path: Path) -> None:
    env_file = python_env(tmp_path)
    store = (tmp_path / ".envd" / "store").as_uri()
    before = run_client("--home", ".envd", "--json", "list", cwd=tmp_path)
    after = run_client("list", "--home", ".envd", "--json", cwd=tmp_path)
    assert one_json(before) == one_json(after) == {"store": store, "environments": []}
    out = run_client(
        "resolve", "-f", str(env_file), "--arch", "linux-64", "--no-archives", "--home", ".envd",
        "-v", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (tmp_path / ".envd" / "store" / "envs").is_dir() and not (tmp_path / "home").exists()
    assert "INFO" in out.stderr  # -v after the command turns logging on


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_has_a_description_and_an_example(tmp_path: Path, command: str) -> None:
    out = run_client(command, "--help", cwd=tmp_path)
    assert out.returncode == 0
    usage, description, *_ = out.stdout.split("\n\n")
    assert usage.startswith(f"usage: envd-client {command}") and len(description) > 20
    assert f"\nexample:\n  envd-client {command}" in out.stdout or (
        command == "completion" and "envd-client completion bash" in out.stdout
    )
    assert "--coordinator ADDRESS" in out.stdout and "--home DIR" in out.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_parse(tmp_path: Path, shell: str) -> None:
    executable = shutil.which(shell)
    if executable is None:
        pytest.skip(f"{shell} is not installed here, so its syntax check cannot run")
    out = run_client("completion", shell, cwd=tmp_path)
    assert out.returncode == 0 and "envd-client" in out.stdout
    script = tmp_path / f"envd-client.{shell}"
    script.write_text(out.stdout)
    checked = subprocess.run([executable, "-n", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_bash_completion_offers_commands_and_their_flags(tmp_path: Path) -> None:
    script = tmp_path / "complete.bash"
    script.write_text(run_client("completion", "bash", cwd=tmp_path).stdout)
    probe = (
        f"source {script}; COMP_WORDS=(envd-client re); COMP_CWORD=1; _envd_client; "
        'echo "${COMPREPLY[@]}"; COMP_WORDS=(envd-client resolve --no-a); COMP_CWORD=2; '
        '_envd_client; echo "${COMPREPLY[@]}"'
    )
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True)
    assert out.stdout == "resolve\n--no-archives\n", out.stderr


def test_ids_by_unique_prefix_and_closest_for_unknown(tmp_path: Path) -> None:
    env_file = python_env(tmp_path)
    out = run_client("resolve", "-f", str(env_file), "--no-archives", "--json", cwd=tmp_path)
    doc = one_json(out)
    req_id = doc["req_id"]
    full_ids = {e["platform"]: e["full_id"] for e in doc["environments"]}
    both = one_json(run_client("list", "--json", cwd=tmp_path))["environments"]
    assert len(both) == 2
    assert one_json(run_client("list", req_id[:8], "--json", cwd=tmp_path))["environments"] == both
    by_prefix = run_client("show", req_id[:8], "--json", cwd=tmp_path)
    assert [e["description"]["platform"] for e in one_json_list(by_prefix)] == [
        "linux-64",
        "osx-arm64",
    ]
    full = full_ids["osx-arm64"]
    for ident in (full[:10], f"{req_id[:8]}:{full[:8]}", f"{req_id}:{full}"):
        (entry,) = one_json_list(run_client("show", ident, "--json", cwd=tmp_path))
        assert entry["description"]["full_id"] == full, ident
    too_short = run_client("show", req_id[:7], cwd=tmp_path)
    assert too_short.returncode == 2
    assert too_short.stderr.startswith(f"error: `{req_id[:7]}` is not an environment id\n")
    typo = req_id[:9] + ("0" if req_id[9] != "0" else "1")
    unknown = run_client("show", typo, cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr == (
        f"error: no environment with id `{typo}`\nhint: closest: `{req_id[:12]}` (req_id)\n"
    )


def one_json_list(out: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    document: list[dict[str, Any]] = json.loads(out.stdout)
    return document


def test_show_names_channels_and_requested_specs(tmp_path: Path) -> None:
    out = run_client(
        "resolve", "-c", str(EXAMPLE_CHANNEL), "-p", "python=3.9", "-p", "zlib", "--arch",
        "linux-64", "--no-archives", "--json", cwd=tmp_path,
    )  # fmt: skip
    req_id = one_json(out)["req_id"]
    shown = run_client("show", req_id[:8], cwd=tmp_path).stdout
    assert f"Channels: {EXAMPLE_CHANNEL.as_uri()}\nRequested: python 3.9.*, zlib\n" in shown
    listed = run_client("list", cwd=tmp_path).stdout
    assert normalized(listed).splitlines()[1].endswith("  yes      python 3.9.*, zlib")


def test_info_of_a_coordinator_counts_agents_per_platform(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "cluster")
    (tmp_path / "cluster").mkdir()
    try:
        cluster.start_daemon()
        cluster.start_agent("a1", ["linux-64", "osx-arm64"])
        cluster.start_agent("a2", ["linux-64"])
        doc = one_json(run_client("--coordinator", cluster.address, "info", "--json",
                                  cwd=tmp_path))  # fmt: skip
        assert doc["agents_per_platform"] == {"linux-64": 2, "osx-arm64": 1}
        text = run_client("--coordinator", cluster.address, "info", cwd=tmp_path).stdout
        assert "\nagents:        linux-64: 2 agents, osx-arm64: 1 agent\n" in text
    finally:
        cluster.stop()
