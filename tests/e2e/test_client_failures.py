"""How envd-client fails: bad addresses at once, unreachable coordinators within seconds and in
plain words, a coordinator lost mid-request, bad input before any job, errors printed once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli import CLIENT, normalized, one_json, run_client

from harness import EXAMPLE_CHANNEL, ROOT, ChannelServer, Cluster, free_port, wait_for

pytestmark = pytest.mark.e2e
SPECS = ROOT / "tests" / "fixtures" / "specs"
HINT = "hint: check `--coordinator` / ENVD_COORDINATOR and that envd-daemon is running there\n"
ADDRESS_HINT = (
    "hint: write `HOST:PORT` (e.g. `localhost:50051`, `[::1]:50051`) or `unix:PATH` (no scheme)\n"
)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("http://foo", "`http://` URLs are not addresses"),
        ("foo", "the port is missing"),
        ("localhost:99999", "`99999` is not a port (1-65535)"),
        ("bad_host!:50051", "`bad_host!` is not a host name or IP address"),
    ],
)
def test_malformed_address_is_refused_at_once(tmp_path: Path, address: str, why: str) -> None:
    start = time.monotonic()
    out = run_client("--coordinator", address, "list", cwd=tmp_path)
    assert time.monotonic() - start < 3
    assert out.returncode == 2
    assert out.stderr == (
        f"error: invalid coordinator address `{address}` (from --coordinator): {why}\n"
        + ADDRESS_HINT
    )


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A port that accepts connections and never answers: a coordinator that hangs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def test_unreachable_coordinators_fail_fast_in_plain_words(
    tmp_path: Path, silent_listener: str
) -> None:
    refused = f"127.0.0.1:{free_port()}"
    cases = [
        (refused, "connection refused"),
        ("no-such-host.invalid:50051", "name not resolved"),
        (f"unix:{tmp_path / 'none.sock'}", f"no socket file at `{tmp_path / 'none.sock'}`"),
        (silent_listener, "timed out after 2 s"),
    ]
    for address, cause in cases:
        start = time.monotonic()
        out = run_client("list", env={"ENVD_COORDINATOR": address}, cwd=tmp_path)
        assert time.monotonic() - start < 3.5, address  # ~2 s at most, plus interpreter start
        assert out.returncode == 5
        assert out.stderr == (
            f"error: failed to reach the coordinator at `{address}`: {cause}\n{HINT}"
        ), address


def _client(tmp_path: Path, *args: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], Path]:
    log = tmp_path / "client.err"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ENVD_")}
    environ |= {"ENVD_CONFIG": "", "ENVD_HOME": str(tmp_path / "home"), **env}
    with log.open("w") as err:
        popen = subprocess.Popen(
            [CLIENT, *args], env=environ, stdout=subprocess.PIPE, stderr=err, text=True
        )
    return popen, log


def test_coordinator_lost_mid_request_reattaches_then_finishes(
    tmp_path: Path, cluster: Cluster, channel: ChannelServer
) -> None:
    port = free_port()
    daemon = cluster.start_daemon(listen=f"127.0.0.1:{port}")
    args = ["resolve", "-c", channel.url, "-p", "python=3.9", "--arch", "linux-64",
            "--no-archives", "--json"]  # fmt: skip
    popen, log = _client(tmp_path, *args, env={"ENVD_COORDINATOR": cluster.address})
    wait_for(lambda: "waiting for an agent" in log.read_text(), 20, "the job to wait for an agent")
    daemon.kill9()
    wait_for(lambda: "lost the coordinator" in log.read_text(), 5, "the client to say so")
    cluster.start_daemon(listen=f"127.0.0.1:{port}")
    cluster.start_agent("agent", ["linux-64"])
    stdout, _ = popen.communicate(timeout=60)
    assert popen.returncode == 0, log.read_text()
    (env,) = one_json_text(stdout)["environments"]
    assert env["outcome"] == "resolved"
    job = env["job_id"]
    text = log.read_text()
    assert (
        f"lost the coordinator at `{cluster.address}`; re-attaching to {job} for up to 120 s\n"
        f"re-attached to the coordinator at `{cluster.address}`\n"
    ) in text


def test_coordinator_gone_for_good_names_the_jobs_to_wait_for(
    tmp_path: Path, cluster: Cluster
) -> None:
    daemon = cluster.start_daemon()
    args = ["resolve", "-c", str(EXAMPLE_CHANNEL), "-p", "python=3.9", "--arch", "linux-64"]
    env = {"ENVD_COORDINATOR": cluster.address, "ENVD_REATTACH_TIMEOUT": "2"}
    popen, log = _client(tmp_path, *args, env=env)
    wait_for(lambda: "waiting for an agent" in log.read_text(), 20, "the job to wait for an agent")
    daemon.signal(signal.SIGKILL)
    popen.communicate(timeout=30)
    assert popen.returncode == 5
    text = log.read_text()
    job = text.split("new job ", 1)[1].split(":", 1)[0]
    assert text.endswith(
        f"lost the coordinator at `{cluster.address}`; re-attaching to {job} for up to 2 s\n"
        f"error: failed to re-attach to the coordinator at `{cluster.address}` within 2 s\n"
        f"hint: the jobs go on without this client; follow them with `envd-client wait {job}`\n"
    )


def one_json_text(text: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(text)
    return document


def test_new_job_and_joined_job_then_resolved_and_dedup(
    tmp_path: Path, cluster: Cluster, channel: ChannelServer
) -> None:
    cluster.start_daemon()
    cluster.start_agent("agent", ["linux-64"])
    channel.set_delay(1.5)
    try:
        args = ["resolve", "-c", channel.url, "-p", "python=3.9", "--arch", "linux-64",
                "--no-archives", "--json"]  # fmt: skip
        env = {"ENVD_COORDINATOR": cluster.address}
        first, first_log = _client(tmp_path, *args, env=env)
        wait_for(lambda: "new job" in first_log.read_text(), 20, "the first job")
        second = run_client(*args, cwd=tmp_path, env=dict(env))
        first.communicate(timeout=60)
    finally:
        channel.set_delay(0)
    (dedup,) = one_json(second)["environments"]
    assert dedup["outcome"] == "dedup"
    lines = second.stderr.splitlines()
    assert all(" joined a job in flight " in line for line in lines[:-1]), lines
    assert lines[-1].startswith("linux-64: dedup after ") and "resolved" not in second.stderr
    first_lines = first_log.read_text().splitlines()
    assert all(" new job " in line for line in first_lines[:-1])
    assert first_lines[-1].startswith("linux-64: resolved after ")


def test_a_failure_is_printed_once(tmp_path: Path) -> None:
    out = run_client(
        "resolve", "-c", str(EXAMPLE_CHANNEL), "-p", "no-such-package", "--arch", "linux-64",
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 3
    both = out.stdout + out.stderr
    assert both.count("no-such-package") == 1, both
    assert out.stderr.splitlines()[-1].startswith("linux-64: failed after ")
    assert "Outcome: failed\nerror: " in out.stdout
    quiet = run_client(
        "resolve", "-q", "-c", str(EXAMPLE_CHANNEL), "-p", "no-such-package", "--arch",
        "linux-64", cwd=tmp_path,
    )  # fmt: skip
    assert quiet.returncode == 3 and quiet.stderr == ""
    assert quiet.stdout.startswith("error: linux-64: ") and quiet.stdout.count("no-such") == 1
    assert normalized(quiet.stdout).endswith("\nlinux-64  failed  T s  JOB\n")


def test_colour_on_a_terminal_only(tmp_path: Path) -> None:
    import pty

    def run(env: dict[str, str]) -> str:
        leader, follower = pty.openpty()
        environ = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        environ |= {"ENVD_CONFIG": "", "ENVD_HOME": str(tmp_path / "home"), **env}
        proc = subprocess.run([CLIENT, "show", "0123abcd"], stderr=follower, env=environ)
        os.close(follower)
        text = os.read(leader, 65536).decode()
        os.close(leader)
        assert proc.returncode == 2
        return text

    assert run({}).startswith("\033[31;1merror:\033[0m no environment with id `0123abcd`")
    assert run({"NO_COLOR": "1"}).startswith("error: no environment with id `0123abcd`")
    piped = run_client("show", "0123abcd", cwd=tmp_path)
    assert piped.stderr.startswith("error: no environment")


def test_bad_input_is_refused_before_any_job(tmp_path: Path) -> None:
    no_channel = run_client("resolve", "-p", "numpy", "--arch", "linux-64", cwd=tmp_path)
    assert no_channel.returncode == 2
    assert no_channel.stderr == (
        "error: the spec has conda dependencies but names no channel to resolve them from\n"
        "hint: add `-c conda-forge` (or a channel URL or folder), or `channels:` to the "
        "environment file\n"
    )
    both = run_client(
        "resolve", "-c", "conda-forge", "-p", "python=3.9", "--python", "3.11", cwd=tmp_path
    )
    assert both.returncode == 2
    assert both.stderr == (
        "error: conflicting python versions: `--python 3.11` and `python=3.9` at --package\n"
        "hint: give the python version once: `--python` or a `python` dependency\n"
    )
    long_name = "r" * 300  # `File name too long`: E100 in words, not an OSError traceback
    too_long = run_client("resolve", "-r", long_name, "--arch", "linux-64", cwd=tmp_path)
    assert too_long.returncode == 2
    assert too_long.stderr == f"error: failed to read `{long_name}`: File name too long\n"
    assert not (tmp_path / "home").exists()  # refused by the client: nothing started


def test_real_files_read_as_conda_lock_reads_them(tmp_path: Path) -> None:
    matplotlib = SPECS / "matplotlib" / "environment.yml"
    out = run_client("spec", "-f", str(matplotlib), "--arch", "linux-64", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (
        "nbconvert !=6.0.0,!=6.0.1,!=7.3.0,!=7.3.1"
        in one_json(out)["platforms"]["linux-64"]["conda"]
    )
    assert out.stderr == (
        "warning: conda dependency `nbconvert[execute]!=6.0.0,!=6.0.1,!=7.3.0,!=7.3.1` at "
        f"{matplotlib}:60: extras `[execute]` are not part of conda's match spec; reading it as "
        "`nbconvert!=6.0.0,!=6.0.1,!=7.3.0,!=7.3.1`\n"
    )
    typo = SPECS / "envd-tests" / "platform-typo.environment.yml"
    out = run_client("spec", "-f", str(typo), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr.startswith(
        f"warning: ignored unknown key `platform` at {typo}:4 (did you mean `platforms`?); "
    )
