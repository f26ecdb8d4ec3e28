"""The bundled example channel, served over loopback HTTP or named as a local folder."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CHANNEL = ROOT / "examples" / "channels" / "conda-forge-python39"

ChannelMode = Literal["http", "folder"]
CHANNEL_MODES: tuple[ChannelMode, ...] = ("http", "folder")


@dataclass(frozen=True, slots=True)
class ChannelSource:
    """Where both sides of a comparison read repodata from, and how to say so in a report."""

    url: str
    mode: ChannelMode
    folder: Path

    @property
    def label(self) -> str:
        relative = (
            self.folder.relative_to(ROOT) if self.folder.is_relative_to(ROOT) else self.folder
        )
        how = "loopback HTTP" if self.mode == "http" else "local folder"
        return f"{relative} via {how} ({self.url})"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without a log line per request (those would interleave with progress)."""

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def open_channel(mode: ChannelMode, folder: Path = EXAMPLE_CHANNEL) -> Iterator[ChannelSource]:
    """HTTP exercises the download and repodata cache as a real channel would; a folder
    isolates the solver from the network stack."""
    if mode == "folder":
        yield ChannelSource(folder.resolve().as_uri(), mode, folder)
        return
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="bench-channel", daemon=True)
    thread.start()
    try:
        yield ChannelSource(f"http://127.0.0.1:{server.server_address[1]}", mode, folder)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
