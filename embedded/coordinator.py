"""The embedded default: the real daemon and an agent in-process, over a private unix socket.

The `embedded` role is the composition root that wires two roles (daemon and agents); the
client uses it when no coordinator is configured. It is the same code as `envd-daemon` +
`envd-agent`, never a second path: real gRPC, SQLite state and a local store in its home.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import sys
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import IO

from envd.channels import DEFAULT_CHANNEL_ALIAS
from envd.errors import CoordinatorUnavailableError
from envd.platforms import known_platforms

MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux, 104 on macOS
CONNECT_TIMEOUT = 30.0


class EmbeddedCoordinator:
    """`with EmbeddedCoordinator(home) as target:` gives a coordinator address to talk to."""

    def __init__(
        self,
        home: Path,
        *,
        store_url: str | None = None,
        channel_alias: str = DEFAULT_CHANNEL_ALIAS,
        no_agent_timeout: float = 300.0,
    ) -> None:
        self.home = home.resolve()
        self.store_url = store_url or str(self.home / "store")
        self.channel_alias = channel_alias
        self.no_agent_timeout = no_agent_timeout
        self._lock_file: IO[str] | None = None
        self._socket_dir: str | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.target = ""

    def __enter__(self) -> str:
        self.home.mkdir(parents=True, exist_ok=True)
        self._lock_file = (self.home / "embedded.lock").open("w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another envd-client using `{self.home}`", file=sys.stderr)
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        path = self._socket_path()
        path.unlink(missing_ok=True)  # left by a killed run; we hold the lock, so it is stale
        self.target = f"unix:{path}"
        self._thread = threading.Thread(target=self._serve, name="envd-embedded", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._release()
            raise self._error
        return self.target

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._release()

    def _socket_path(self) -> Path:
        candidate = self.home / "daemon.sock"
        if len(str(candidate)) <= MAX_SOCKET_PATH:
            return candidate
        self._socket_dir = tempfile.mkdtemp(prefix="envd-")
        return Path(self._socket_dir) / "daemon.sock"

    def _release(self) -> None:
        Path(self.target.removeprefix("unix:")).unlink(missing_ok=True)
        if self._socket_dir is not None:
            os.rmdir(self._socket_dir)
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as err:  # thread boundary: hand the failure to the caller
            self._error = err
            self._ready.set()

    async def _main(self) -> None:
        from envd.agents.connection import AgentIdentity
        from envd.agents.main import build_connection
        from envd.channel_policy import ChannelPolicy
        from envd.clock import random_id
        from envd.daemon.server import start_daemon
        from envd.daemon.settings import CoordinatorSettings
        from envd.daemon.state_sqlite import SqliteJobState

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # the user's own machine: local folder channels are theirs to read
        settings = CoordinatorSettings(
            store_url=self.store_url, no_agent_timeout=self.no_agent_timeout,
            channel_policy=ChannelPolicy.of(any_local=True),
        )  # fmt: skip
        # the home's lock is ours: no agent of an earlier run can still hold a lease
        state = SqliteJobState(self.home / "state.sqlite", random_id)
        daemon = await start_daemon(
            listen=self.target, store_url=self.store_url, state=state, settings=settings,
            requeue_leased_at_start=True,
        )  # fmt: skip
        identity = AgentIdentity(
            agent_id=f"embedded-{socket.gethostname()}-{os.getpid()}",
            host=socket.gethostname(),
            platforms=known_platforms(),
            slots=2,
        )
        agent = build_connection(
            target=self.target,
            identity=identity,
            cache_dir=self.home / "cache",
            channel_alias=self.channel_alias,
            solve_timeout=300.0,
            store_override=None,
        )
        agent_task = asyncio.create_task(agent.run_forever(self._stop))
        try:
            await asyncio.wait_for(agent.connected.wait(), timeout=CONNECT_TIMEOUT)
        except TimeoutError as err:
            self._stop.set()
            await daemon.stop(grace=0)
            raise CoordinatorUnavailableError(
                f"the embedded agent did not connect to `{self.target}` within "
                f"{CONNECT_TIMEOUT:g} s",
                hint="rerun with `-v` to see the daemon and agent logs",
            ) from err
        self._ready.set()
        await self._stop.wait()
        await agent_task
        await daemon.stop(grace=0.5)
