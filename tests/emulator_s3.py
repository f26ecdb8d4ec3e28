"""A real moto S3 server on a loopback port, for the S3 store tests."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import boto3  # type: ignore[import-untyped, unused-ignore]

from harness import free_port, stop_process

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
_PORT_ATTEMPTS = 3


class MotoServer:
    """One `moto_server` process; `stop` and `start` again (same port, empty state) let a test
    see the store go down and come back."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._log_path = workdir / "moto.log"
        self._port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None
        self._client: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def log_path(self) -> Path:
        return self._log_path

    def start(self) -> None:
        """Start the server (on a free port the first time, on the same port after `stop`)."""
        assert self._proc is None, "moto is already running"
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            if self._port == 0 or attempt > 1:
                self._port = free_port()
                self._client = None  # bound to the old endpoint
            try:
                self._spawn()
                return
            except RuntimeError:
                if attempt == _PORT_ATTEMPTS:
                    raise  # the port was taken between choosing and binding it, every time

    def stop(self) -> None:
        """Terminate the server; its buckets and objects are gone."""
        if self._proc is not None:
            stop_process(self._proc, _STOP_TIMEOUT)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def client(self) -> Any:
        """A boto3 S3 client for arranging and inspecting state (independent of env vars)."""
        if self._client is None:
            session = boto3.session.Session(
                aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
            )
            self._client = session.client("s3", endpoint_url=self.endpoint)
        return self._client

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def _spawn(self) -> None:
        # Output goes to a file: moto stalls after ~900 requests once an unread pipe fills.
        self._log = self._log_path.open("ab")
        moto = Path(sys.executable).parent / "moto_server"
        self._proc = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(self._port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"moto_server exited at start; see {self._log_path}")
            if _answers(self.endpoint):
                return
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"moto_server did not answer within {_START_TIMEOUT}s")


@contextlib.contextmanager
def start_moto(workdir: Path) -> Iterator[MotoServer]:
    """A running moto server logging to `workdir/moto.log`, stopped at exit."""
    server = MotoServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
