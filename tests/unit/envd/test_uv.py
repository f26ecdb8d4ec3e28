"""The uv runners of `envd/uv.py`: the real uv binary, and a deadline that kills the whole
process group (a shell with a child stands in for uv and the build backend it started)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from envd.uv import run_group, run_uv, uv_bin, uv_environment


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


def test_run_uv_returns_uv_s_output_and_exit_code(tmp_path: Path) -> None:
    env = uv_environment(os.environ, home=tmp_path, cache_dir=tmp_path / "cache")
    done = run_uv([uv_bin(), "--version"], env=env, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("uv ")
    bad = run_uv([uv_bin(), "no-such-command"], env=env, timeout=60)
    assert bad.returncode != 0 and "no-such-command" in bad.stderr


def test_past_the_deadline_the_whole_group_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"sleep 60 & echo $! > {pid_file}; wait"
    with pytest.raises(subprocess.TimeoutExpired):
        run_uv(["/bin/sh", "-c", script], env=dict(os.environ), timeout=0.5)
    assert _wait_gone(int(pid_file.read_text()))  # the grandchild too, not only the shell


def test_a_cancelled_group_run_kills_the_whole_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"sleep 60 & echo $! > {pid_file}; wait"

    async def main() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await run_group(["/bin/sh", "-c", script], tmp_path, dict(os.environ))

    asyncio.run(main())
    assert _wait_gone(int(pid_file.read_text()))
    code, output = asyncio.run(run_group([sys.executable, "-c", "print('hi')"], tmp_path, {}))
    assert (code, output) == (0, "hi\n")
