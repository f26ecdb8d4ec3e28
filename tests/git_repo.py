"""Real git repositories for the tests: a small flit_core project committed and tagged, a bare
copy of it served over loopback by git's dumb HTTP protocol (`git update-server-info`, then
static files from a `http.server` thread)."""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PYPROJECT = """[project]
name = "{name}"
version = "0.1"
description = "a project in git"
requires-python = ">=3.9"

[build-system]
requires = ["flit_core>=3.4,<5"]
build-backend = "flit_core.buildapi"
"""
ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent",
    "PATH": "/usr/bin:/bin:/usr/local/bin",
}  # fmt: skip


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          check=True)  # fmt: skip
    return done.stdout.strip()


def write_project(folder: Path, name: str, value: str = "1") -> None:
    module = name.replace("-", "_")
    (folder / "src" / module).mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(PYPROJECT.format(name=name))
    (folder / "src" / module / "__init__.py").write_text(f"X = {value}\n")


def make_repo(folder: Path) -> Path:
    """A repository with `gitpkg` at its root and `subpkg` in `sub/`, one commit tagged `v1`
    on branch `main`. Returns the working repository."""
    folder.mkdir(parents=True)
    git(folder, "init", "--quiet", "--initial-branch=main")
    write_project(folder, "gitpkg")
    write_project(folder / "sub", "subpkg")
    commit(folder, "first")
    git(folder, "tag", "v1")
    return folder


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def publish(repo: Path, bare: Path) -> None:
    """Push every branch and tag (forced: a moved tag moves) to `bare`, ready for dumb HTTP."""
    if not bare.exists():
        git(repo.parent, "init", "--quiet", "--bare", str(bare))
    git(repo, "push", "--quiet", "--force", str(bare), "refs/heads/*:refs/heads/*",
        "refs/tags/*:refs/tags/*")  # fmt: skip
    git(bare, "symbolic-ref", "HEAD", "refs/heads/main")
    git(bare, "update-server-info")


@contextmanager
def serve_dumb_http(root: Path) -> Iterator[str]:
    """`root`'s files over loopback http; yields the base URL (`http://127.0.0.1:PORT`)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
