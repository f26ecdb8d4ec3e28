"""Loopback servers that misbehave on purpose: a host that accepts and never answers, and a
one-package channel whose archive never finishes downloading."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

PACKAGE = "slowpkg"
ARCHIVE = f"{PACKAGE}-1.0-0.conda"
ARCHIVE_SIZE = 4 * 1024 * 1024
TRICKLE = 1024  # bytes per step of a trickling download
TRICKLE_EVERY = 0.02  # seconds between steps


@dataclass
class StalledServer:
    """Accepts every connection and never sends a byte. `connections` holds each accepted
    socket, so a test can see whether the client gave up on it (a read returns b"")."""

    url: str
    connections: list[socket.socket] = field(default_factory=list)

    def closed_by_client(self) -> bool:
        """True once every accepted connection was closed by the client."""
        for connection in self.connections:
            connection.settimeout(0.05)
            try:
                while connection.recv(65536):
                    pass  # the request the client sent
            except TimeoutError:
                return False  # still open
            except OSError:
                pass  # reset by the client: closed too
        return bool(self.connections)


@contextmanager
def stalled_server() -> Iterator[StalledServer]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    server = StalledServer(f"http://127.0.0.1:{listener.getsockname()[1]}/channel")

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            server.connections.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        listener.close()
        for connection in server.connections:
            connection.close()
        thread.join(timeout=5)


def write_one_package_channel(folder: Path) -> str:
    """A channel whose `noarch` holds `slowpkg 1.0` (no dependencies) and whose `linux-64` is
    empty; returns the archive's sha256. The archive's bytes are zeros: no test gets to the
    end of the download."""
    data = bytes(ARCHIVE_SIZE)
    record = {
        "name": PACKAGE, "version": "1.0", "build": "0", "build_number": 0, "depends": [],
        "subdir": "noarch", "noarch": "generic", "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(), "md5": hashlib.md5(data).hexdigest(),
    }  # fmt: skip
    for subdir, packages in (("noarch", {ARCHIVE: record}), ("linux-64", {})):
        (folder / subdir).mkdir(parents=True, exist_ok=True)
        repodata = {"info": {"subdir": subdir}, "packages": {}, "packages.conda": packages,
                    "repodata_version": 1}  # fmt: skip
        (folder / subdir / "repodata.json").write_text(json.dumps(repodata))
    return str(record["sha256"])


@dataclass
class SlowArchiveChannel:
    """Serves a channel folder, except `ARCHIVE`: its download trickles (`TRICKLE` bytes every
    `TRICKLE_EVERY` s) or stalls after the request (no status line at all)."""

    url: str
    started: threading.Event  # an archive download began
    ended: threading.Event  # the client hung up on a trickling download


@contextmanager
def serve_slow_archive(
    folder: Path, archive: Literal["trickle", "stall"]
) -> Iterator[SlowArchiveChannel]:
    started, ended, stop = threading.Event(), threading.Event(), threading.Event()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if not self.path.endswith(ARCHIVE):
                super().do_GET()
                return
            started.set()
            if archive == "stall":
                stop.wait()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(ARCHIVE_SIZE))
            self.end_headers()
            try:
                for _ in range(ARCHIVE_SIZE // TRICKLE):
                    if stop.is_set():
                        return
                    self.wfile.write(bytes(TRICKLE))
                    self.wfile.flush()
                    time.sleep(TRICKLE_EVERY)
            except OSError:
                ended.set()

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield SlowArchiveChannel(f"http://127.0.0.1:{httpd.server_address[1]}", started, ended)
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
