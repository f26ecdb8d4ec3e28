"""A real PostgreSQL server (Debian's `postgresql`) in a temp dir on a unix socket, for the
PostgreSQL state and replica tests: `initdb`, `fsync=off`, stopped at the end."""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from harness import wait_for

_START_TIMEOUT = 30.0
_schemas = itertools.count(1)


def postgres_bindir() -> Path | None:
    """Where `initdb` and `postgres` are: on PATH, else Debian's versioned folder."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def unavailable_reason() -> str | None:
    """Why no server can be started here (None when one can)."""
    if postgres_bindir() is None:
        return "PostgreSQL is not installed (`apt-get install -y postgresql`; .ci/run does it)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server as"
    return None


@dataclass
class PostgresServer:
    """One running server; `url()` names a database on its socket, optionally with its own
    schema (tests share the server, each gets a fresh schema)."""

    root: Path
    socket_dir: Path
    process: subprocess.Popen[bytes]
    port: int = 5432
    database: str = "envd"
    user: str = "envd"

    def url(self, schema: str | None = None) -> str:
        base = f"postgresql://{self.user}@/{self.database}?host={self.socket_dir}&port={self.port}"
        return base if schema is None else f"{base}&options=-csearch_path%3D{schema}"

    def new_schema(self, name: str | None = None) -> str:
        """Create a fresh schema and return a URL whose connections use it."""
        schema = name or f"t{os.getpid()}_{next(_schemas)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        return self.url(schema)

    def log(self) -> str:
        path = self.root / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _as_postgres() -> dict[str, Any]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user then (the
    process itself, no wrapper, so signals reach it)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


@contextlib.contextmanager
def start_postgres(
    *, listen: str = "", port: int = 5432, netns: str | None = None, trust: str = ""
) -> Iterator[PostgresServer]:
    """A throwaway server: data and socket in a new temp dir, removed after it stops.
    `listen`: TCP addresses too (none by default); `trust`: a network whose clients connect
    without a password; `netns`: run it inside that network namespace."""
    bindir = postgres_bindir()
    assert bindir is not None, unavailable_reason()
    root = Path(tempfile.mkdtemp(prefix="envd-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        for path in (root, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-U", "envd", "-A", "trust", "--no-sync",
         "-E", "UTF8", "--locale=C"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=root, **_as_postgres(),
    )  # fmt: skip
    if trust:
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {trust} trust\n")
    log = (root / "postgres.log").open("ab")
    # inside a namespace: `ip netns exec` (root) then `setpriv` to the postgres user, both
    # exec in place so the server is the process the test signals
    wrap, user = [], _as_postgres()
    if netns is not None:
        wrap = ["ip", "netns", "exec", netns]
        if user:
            wrap += ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups"]
        user = {}
    process = subprocess.Popen(
        [
            *wrap,
            str(bindir / "postgres"), "-D", str(data), "-k", str(sockets), "-p", str(port),
            "-c", f"listen_addresses={listen}", "-c", "fsync=off",
            "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ],
        stdout=log, stderr=subprocess.STDOUT, cwd=root, **user,
    )  # fmt: skip
    log.close()
    server = PostgresServer(root, sockets, process, port)
    try:
        wait_for(lambda: _ready(server), _START_TIMEOUT, "postgres ready", interval=0.1)
        with _connect(server, "postgres") as conn:
            conn.execute("CREATE DATABASE envd")
        yield server
    finally:
        process.send_signal(signal.SIGINT)  # "fast" shutdown: SIGTERM would wait for clients
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def _connect(server: PostgresServer, database: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(
        host=str(server.socket_dir), port=server.port, user=server.user, dbname=database,
        autocommit=True, connect_timeout=2,
    )  # fmt: skip


def _ready(server: PostgresServer) -> bool:
    if server.process.poll() is not None:
        raise AssertionError(f"postgres exited at start:\n{server.log()}")
    try:
        with _connect(server, "postgres"):
            return True
    except Exception:
        time.sleep(0.05)
        return False
