"""Azurite, the Azure Blob Storage emulator (from npm, see package.json), for integration tests."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.core.exceptions import AzureError
from azure.storage.blob import BlobServiceClient

from harness import stop_process

ROOT = Path(__file__).resolve().parent.parent
AZURITE_BLOB = ROOT / "node_modules" / ".bin" / "azurite-blob"
# The emulator's one account and its published key (documented, not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_LISTENING = re.compile(r"successfully listens on http://127\.0\.0\.1:(\d+)")
_START_TIMEOUT = 30.0


@dataclass
class Azurite:
    """One running `azurite-blob`; its log is a file, so a chatty emulator never blocks."""

    popen: subprocess.Popen[bytes]
    log_path: Path
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.endpoint};"
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def create_container(self, name: str) -> None:
        with BlobServiceClient.from_connection_string(self.connection_string) as service:
            service.create_container(name)

    def answers(self) -> bool:
        try:
            with BlobServiceClient.from_connection_string(
                self.connection_string, retry_total=0, connection_timeout=2
            ) as service:
                service.get_service_properties()
        except AzureError:
            return False
        return True

    def stop(self) -> None:
        """Stop the emulator (also what a "store is down" test calls); idempotent."""
        stop_process(self.popen)


@contextmanager
def start_azurite(workdir: Path) -> Iterator[Azurite]:
    """Run `azurite-blob` on a free loopback port with its data under `workdir`; stop at exit."""
    if not AZURITE_BLOB.exists() or shutil.which("node") is None:
        pytest.skip(
            f"Azurite is not installed (`{AZURITE_BLOB.relative_to(ROOT)}` or `node` missing): "
            "run `make test`, which installs it with npm from package.json"
        )
    location = workdir / "azurite"
    location.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "azurite.log"
    argv = [
        str(AZURITE_BLOB),
        "--blobHost", "127.0.0.1",
        "--blobPort", "0",  # the emulator picks a free port and prints it
        "--location", str(location),
        "--silent",
        "--disableTelemetry",
        "--skipApiVersionCheck",  # the Python SDK may speak a newer API version
        "--loose",
    ]  # fmt: skip
    with log_path.open("ab") as log_file:
        popen = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        azurite = Azurite(popen, log_path, _wait_for_port(popen, log_path))
        deadline = time.monotonic() + _START_TIMEOUT
        while not azurite.answers():
            if time.monotonic() > deadline:
                raise AssertionError(f"Azurite did not answer in time:\n{azurite.log()}")
            time.sleep(0.05)
        yield azurite
    finally:
        Azurite(popen, log_path, 0).stop()


def _wait_for_port(popen: subprocess.Popen[bytes], log_path: Path) -> int:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        log = log_path.read_text(errors="replace")
        if found := _LISTENING.search(log):
            return int(found.group(1))
        if popen.poll() is not None:
            raise AssertionError(f"Azurite exited with {popen.returncode}:\n{log}")
        time.sleep(0.05)
    raise AssertionError(f"Azurite did not start in {_START_TIMEOUT}s:\n{log_path.read_text()}")
