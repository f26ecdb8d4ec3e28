"""A loopback PyPI index of metadata-only wheels: the conda packages uv must take as they are."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.server
import io
import json
import re
import threading
import zipfile
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from urllib.parse import unquote

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
# PEP 700 upload time of every stub: `--exclude-newer` refuses files without one, and a stub
# stands for a conda package the conda solve already chose (under the same `exclude_newer`)
STUB_UPLOAD_TIME = "1970-01-01T00:00:00Z"
_EPOCH_AND_RELEASE = re.compile(r"^(?:(\d+)!)?(\d+(?:\.\d+)*)(.*)$")
_NOT_LABEL = re.compile(r"[^a-z0-9]+")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_POLL = 0.05  # seconds: how soon `shutdown` is noticed


@dataclass(frozen=True, slots=True)
class HeldPackage:
    """A PyPI distribution the conda solution provides, at the version uv must keep."""

    name: str  # canonical PyPI name
    version: str  # PEP 440 (see `pep440_version`)
    conda_name: str
    conda_version: str


def pep440_version(conda_version: str) -> str:
    """A conda version as PEP 440, for uv to compare requirements against:
    - valid PEP 440 as written (most are: `1.16.0`, `2.0.0rc1`, `1!2.0`): normalized by
      `packaging` (`2024.02.02` → `2024.2.2`, the same version);
    - else with `_` read as `.` (conda treats both as separators): `0.9_1` → `0.9.1`;
    - else its leading release, with the rest as a local label: `1.1.1w` → `1.1.1+w`
      (`==1.1.1` and `>=1.1` still match it, as PEP 440 ignores local labels there);
    - else (no leading number: `stable`) `0+<label>`: still held, so uv never adds PyPI's
      copy, and any lower bound on it fails the resolve naming it rather than replacing it."""
    text = conda_version.strip()
    for candidate in (text, text.replace("_", ".")):
        try:
            return str(Version(candidate))
        except InvalidVersion:
            pass
    match = _EPOCH_AND_RELEASE.match(text)
    epoch, release, rest = (match[1], match[2], match[3]) if match else (None, "0", text)
    label = _NOT_LABEL.sub(".", rest.lower()).strip(".")
    version = (f"{epoch}!" if epoch else "") + release + (f"+{label}" if label else "")
    return str(Version(version))


def stub_filename(package: HeldPackage) -> str:
    return f"{package.name.replace('-', '_')}-{package.version}-py3-none-any.whl"


def stub_metadata(package: HeldPackage) -> bytes:
    """The wheel's METADATA: its name and version, no dependencies (conda satisfies them)."""
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {package.name}\n"
        f"Version: {package.version}\n"
        f"Summary: provided by conda package {package.conda_name} {package.conda_version}\n"
    ).encode()


def stub_wheel(package: HeldPackage) -> bytes:
    """A metadata-only wheel (`py3-none-any`, so it fits every target): dist-info alone."""
    dist_info = f"{package.name.replace('-', '_')}-{package.version}.dist-info"
    files = {
        f"{dist_info}/METADATA": stub_metadata(package),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: envd\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = [f"{path},sha256={_b64(data)},{len(data)}" for path, data in files.items()]
    files[f"{dist_info}/RECORD"] = ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(zipfile.ZipInfo(path, _ZIP_TIME), data)
    return out.getvalue()


def project_page(package: HeldPackage, files_url: str, wheel: bytes) -> dict[str, object]:
    """The PEP 691 page of one held project: its one stub wheel, with its PEP 658 metadata
    and a PEP 700 upload time."""
    filename = stub_filename(package)
    return {
        "meta": {"api-version": "1.1"},
        "name": package.name,
        "versions": [package.version],
        "files": [
            {
                "filename": filename,
                "url": f"{files_url}/{filename}",
                "hashes": {"sha256": hashlib.sha256(wheel).hexdigest()},
                "core-metadata": {"sha256": hashlib.sha256(stub_metadata(package)).hexdigest()},
                "upload-time": STUB_UPLOAD_TIME,
            }
        ],
    }


@asynccontextmanager
async def serve_stubs(held: Iterable[HeldPackage]) -> AsyncIterator[str]:
    """Serve the held packages on 127.0.0.1 (a free port) while the block runs; yields the
    index URL (`…/simple`). Stubs are built on request, only for the names uv asks about."""
    by_name = {p.name: p for p in held}
    by_file = {stub_filename(p): p for p in by_name.values()}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(by_name, by_file))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    server.files_url = f"{base}/files"  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": _POLL}, daemon=True
    )
    thread.start()
    try:
        yield f"{base}/simple"
    finally:
        await asyncio.shield(asyncio.to_thread(_stop, server, thread))


def _stop(server: http.server.ThreadingHTTPServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join()


def _handler(
    by_name: dict[str, HeldPackage], by_file: dict[str, HeldPackage]
) -> type[http.server.BaseHTTPRequestHandler]:
    built = cache(stub_wheel)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass  # uv's requests are not the agent's log

        def do_GET(self) -> None:
            parts = [unquote(p) for p in self.path.split("?")[0].split("/") if p]
            if len(parts) == 2 and parts[0] == "simple":
                package = by_name.get(canonicalize_name(parts[1]))
                if package is not None:
                    files_url = self.server.files_url  # type: ignore[attr-defined]
                    page = project_page(package, files_url, built(package))
                    self._send(json.dumps(page).encode(), JSON_TYPE)
                    return
            elif len(parts) == 2 and parts[0] == "files":
                name, metadata = parts[1].removesuffix(".metadata"), parts[1].endswith(".metadata")
                package = by_file.get(name)
                if package is not None:
                    body = stub_metadata(package) if metadata else built(package)
                    self._send(body, "application/octet-stream")
                    return
            self.send_error(404)  # not held: uv goes on to the spec's own indexes

        def _send(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")  # a new port every resolve
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
