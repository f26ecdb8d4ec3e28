"""uv as envd runs it: the binary from its PyPI wheel, in an environment without secrets, in
its own process group (a deadline kills the build backends uv started too)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

# What uv may see of the caller's environment: the network path (proxies, CA bundles) and the
# locale. Nothing else passes: no store or channel credentials (AWS_*, ENVD_CHANNEL_TOKEN,
# NETRC…), no UV_* or PIP_* settings that would change an answer behind the spec's back.
PASSED = (
    "PATH", "LANG", "LC_ALL", "TZ",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "all_proxy", "no_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR",
)  # fmt: skip


def uv_bin() -> str:
    """The uv executable installed with envd (the `uv` wheel is a runtime dependency)."""
    import uv

    path: str = uv.find_uv_bin()
    return path


def uv_environment(
    parent: Mapping[str, str],
    *,
    home: Path,
    cache_dir: Path,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment a uv run gets: the passed names of `parent`, a scratch HOME (so no
    `~/.netrc`, `~/.config/uv` or keyring is read), its own cache, no interpreter downloads,
    no config files, no progress bars."""
    env = {name: parent[name] for name in PASSED if name in parent}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        UV_CACHE_DIR=str(cache_dir),
        UV_PYTHON_DOWNLOADS="never",
        UV_NO_CONFIG="1",
        UV_NO_PROGRESS="1",
        NO_COLOR="1",
        UV_KEYRING_PROVIDER="disabled",
    )
    env.update(extra or {})
    return env


def run_uv(
    argv: Sequence[str], *, env: Mapping[str, str], timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `argv` (`[uv_bin(), …]`) to its end, stdin closed, output captured as text, in its
    own process group: past `timeout` seconds the whole group is killed and reaped, then
    `subprocess.TimeoutExpired` is raised (as `subprocess.run` raises it)."""
    with subprocess.Popen(
        list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    ) as process:  # fmt: skip
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except BaseException:
            _kill_group(process.pid)
            process.communicate()
            raise
    return subprocess.CompletedProcess(list(argv), process.returncode, stdout, stderr)


async def run_group(args: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run a command (uv, auditwheel) in its own process group, stdout and stderr together;
    cancelled (a deadline, a revoked lease), the whole group is killed and reaped before
    `CancelledError` leaves here."""
    process = await asyncio.create_subprocess_exec(
        *args, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = await process.communicate()
    except BaseException:
        _kill_group(process.pid)
        await asyncio.shield(process.wait())
        raise
    return process.returncode or 0, output.decode("utf-8", "replace")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def find_links_args(find_links: Sequence[str]) -> list[str]:
    """uv's `--find-links URL` for each of a spec's find-links pages, in order."""
    return [arg for url in find_links for arg in ("--find-links", url)]
