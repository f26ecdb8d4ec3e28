"""Real processes for integration tests: envd-daemon, envd-agent, and a loopback channel."""

from __future__ import annotations

import functools
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EXAMPLE_CHANNEL = ROOT / "examples" / "channels" / "conda-forge-python39"


def wait_for(predicate: object, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stop_process(popen: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate, then kill if it lingers; idempotent (servers, agents, emulators)."""
    if popen.poll() is not None:
        return
    popen.terminate()
    try:
        popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait(timeout=timeout)


def free_port() -> int:
    """A loopback port free right now (for servers that must be restarted on the same one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def kill9(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        stop_process(self.popen)


@dataclass
class Cluster:
    """Spawns daemons and agents under one temporary directory; stops them all at the end."""

    root: Path
    processes: list[Process] = field(default_factory=list)
    address: str = ""

    def _spawn(
        self, name: str, argv: list[str], extra_env: Mapping[str, str] | None = None,
        netns: str | None = None,
    ) -> Process:  # fmt: skip
        """`netns`: run it inside that network namespace (`ip netns exec` execs in place, so
        the process is the daemon or agent itself and signals reach it)."""
        if netns is not None:
            argv = ["ip", "netns", "exec", netns, *argv]
        log_path = self.root / f"{name}.log"
        log_file = log_path.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        env.pop("ENVD_COORDINATOR", None)
        popen = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        log_file.close()
        process = Process(name, popen, log_path)
        self.processes.append(process)
        return process

    def start_daemon(
        self, *, lease_ttl: float = 2.0, heartbeat: float = 0.3, no_agent_timeout: float = 60.0,
        listen: str | None = None, store_url: str | None = None, state: str | None = None,
        args: Sequence[str] = (), netns: str | None = None,
    ) -> Process:  # fmt: skip
        """`state`: a `postgresql://` URL that several daemons (replicas) share; default a
        SQLite file under the cluster's root."""
        name = f"daemon-{len(self.processes)}"
        ready = self.root / f"{name}.ready"
        ready.unlink(missing_ok=True)
        argv = [
            str(BIN / "envd-daemon"),
            "--listen", listen or "127.0.0.1:0",
            "--store", store_url or str(self.root / "store"),
            "--state", state or str(self.root / "state.sqlite"),
            "--lease-ttl", str(lease_ttl),
            "--heartbeat-interval", str(heartbeat),
            "--no-agent-timeout", str(no_agent_timeout),
            "--ready-file", str(ready),
            # as an operator would list them: the repo's example and fixture channels
            "--allow-local-channels", str(ROOT / "examples"),
            "--allow-local-channels", str(ROOT / "tests" / "fixtures"),
            *args,
        ]  # fmt: skip
        process = self._spawn(name, argv, netns=netns)
        wait_for(lambda: ready.exists() or process.popen.poll() is not None, 30, "daemon ready")
        assert process.popen.poll() is None, process.log()
        self.address = ready.read_text().strip()
        return process

    def start_agent(
        self, name: str, platforms: list[str], slots: int = 1, args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        netns: str | None = None,
    ) -> Process:  # fmt: skip
        argv = [
            str(BIN / "envd-agent"),
            "--coordinator", self.address,
            "--agent-id", name,
            "--cache-dir", str(self.root / f"cache-{name}"),
            "--slots", str(slots),
            *args,
        ]  # fmt: skip
        for platform in platforms:
            argv += ["--platform", platform]
        process = self._spawn(name, argv, env, netns)
        wait_for(lambda: "connected to" in process.log(), 30, f"agent {name} connected")
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


class _ChannelHandler(http.server.SimpleHTTPRequestHandler):
    delay = 0.0
    token = ""  # when set, every request must carry `Authorization: Bearer <token>`
    requests: list[str]
    authorizations: list[str]  # every Authorization header a request carried

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.headers.get("Authorization") is not None:
            self.authorizations.append(self.headers["Authorization"])
        if self.token and self.headers.get("Authorization") != f"Bearer {self.token}":
            self.send_error(401, "a bearer token is required")
            return
        if self.delay and self.path.endswith("repodata.json"):
            time.sleep(self.delay)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class ChannelServer:
    """A channel folder served over loopback HTTP; `delay` slows repodata down on purpose."""

    url: str
    handler: type[_ChannelHandler]
    server: http.server.ThreadingHTTPServer

    def set_delay(self, seconds: float) -> None:
        self.handler.delay = seconds

    def require_token(self, token: str) -> None:
        self.handler.token = token

    @property
    def requests(self) -> list[str]:
        return self.handler.requests

    @property
    def authorizations(self) -> list[str]:
        return self.handler.authorizations


@contextmanager
def serve_channel(folder: Path, host: str = "127.0.0.1") -> Iterator[ChannelServer]:
    handler = type(
        "Handler", (_ChannelHandler,),
        {"delay": 0.0, "token": "", "requests": [], "authorizations": []},
    )  # fmt: skip
    server = http.server.ThreadingHTTPServer(
        (host, 0), functools.partial(handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ChannelServer(f"http://{host}:{server.server_address[1]}", handler, server)
    finally:
        server.shutdown()
        server.server_close()
