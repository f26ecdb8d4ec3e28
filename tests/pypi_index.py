"""A PyPI index the tests generate: wheels written by hand, served over loopback HTTP.

A wheel is a zip with the package, `METADATA`, `WHEEL` and `RECORD`; no build tool is needed.
An sdist (`Sdist`) is a real one, built by setuptools: the index also serves the setuptools wheel
of `tests/fixtures/pypi/`, so an isolated build (`uv build --index-url` this index) needs no PyPI.
The index answers PEP 691 JSON (with PEP 700 upload times, which `--exclude-newer` needs) to
clients that ask for it, PEP 503 HTML to the rest.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import http.server
import io
import json
import tarfile
import threading
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
LINUX_TAG = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
MACOS_TAG = "cp311-cp311-macosx_11_0_arm64"
PURE_TAG = "py3-none-any"
SETUPTOOLS_WHEEL = (
    Path(__file__).parent / "fixtures" / "pypi" / "setuptools-84.2.1-py3-none-any.whl"
)
FLIT_CORE_WHEEL = Path(__file__).parent / "fixtures" / "pypi" / "flit_core-4.1.0-py3-none-any.whl"


@dataclass(frozen=True, slots=True)
class Wheel:
    name: str
    version: str
    tag: str = PURE_TAG
    requires: tuple[str, ...] = ()
    uploaded: str = "2024-01-01T00:00:00Z"

    @property
    def filename(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}-{self.tag}.whl"


@dataclass(frozen=True, slots=True)
class Sdist:
    """A source distribution only (no wheel): pure python, or with a C extension module
    `<name>._speed` (gcc and Python.h build it on linux; its wheel is `linux_x86_64`)."""

    name: str
    version: str
    c_extension: bool = False
    uploaded: str = "2024-01-01T00:00:00Z"
    setup_py: str | None = None  # e.g. a build that fails or hangs

    @property
    def filename(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}.tar.gz"


def write_sdist(sdist: Sdist, folder: Path) -> Path:
    """An sdist with static metadata (PKG-INFO 2.2, so resolving reads it without a build) and
    a setuptools `pyproject.toml`; byte-for-byte the same on every call."""
    module = sdist.name.replace("-", "_")
    base = f"{module}-{sdist.version}"
    pkg_info = f"Metadata-Version: 2.2\nName: {sdist.name}\nVersion: {sdist.version}\n"
    files = {
        "PKG-INFO": pkg_info,
        "pyproject.toml": '[build-system]\nrequires = ["setuptools>=70.1"]\n'
        'build-backend = "setuptools.build_meta"\n\n[project]\n'
        f'name = "{sdist.name}"\nversion = "{sdist.version}"\n\n'
        f'[tool.setuptools]\npackages = ["{module}"]\n',
        f"{module}/__init__.py": f"VERSION = {sdist.version!r}\n",
    }
    if sdist.c_extension:
        files["setup.py"] = (
            "from setuptools import Extension, setup\n\n"
            f'setup(ext_modules=[Extension("{module}._speed", ["{module}/speed.c"])])\n'
        )
        files[f"{module}/speed.c"] = (
            "#include <Python.h>\n"
            'static struct PyModuleDef speed = {PyModuleDef_HEAD_INIT, "_speed", 0, -1, 0};\n'
            "PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&speed); }\n"
        )
    if sdist.setup_py is not None:
        files["setup.py"] = sdist.setup_py
    path = folder / sdist.filename
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{base}/{name}")
            info.size, info.mtime, info.mode = len(data), 1_704_067_200, 0o644
            archive.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
    return path


def write_wheel(wheel: Wheel, folder: Path) -> Path:
    """A wheel whose module `<name>` says its version and the tag it was built for."""
    module = wheel.name.replace("-", "_")
    dist_info = f"{module}-{wheel.version}.dist-info"
    files = {
        f"{module}/__init__.py": f"VERSION = {wheel.version!r}\nTAG = {wheel.tag!r}\n",
        f"{dist_info}/METADATA": "Metadata-Version: 2.1\n"
        f"Name: {wheel.name}\nVersion: {wheel.version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in wheel.requires),
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: envd-tests\n"
        f"Root-Is-Purelib: {'true' if wheel.tag == PURE_TAG else 'false'}\n"
        + "".join(
            f"Tag: {wheel.tag.split('-')[0]}-{wheel.tag.split('-')[1]}-{p}\n"
            for p in wheel.tag.split("-")[2].split(".")
        ),
    }
    record = [
        f"{path},sha256={_b64(text.encode())},{len(text.encode())}" for path, text in files.items()
    ]
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    path = folder / wheel.filename
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), text)
    return path


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


@dataclass
class PypiIndex:
    """Served at `url` (`…/simple`); `requests` records every path asked for."""

    url: str
    folder: Path
    wheels: list[Wheel]
    requests: list[str] = field(default_factory=list)
    sdists: list[Sdist] = field(default_factory=list)


def standard_wheels() -> list[Wheel]:
    """`envd-app` 1.0 (2024) and 2.0 (2025); 2.0 needs a platform wheel and one package per
    OS by marker."""
    return [
        Wheel("envd-app", "1.0"),
        Wheel(
            "envd-app",
            "2.0",
            requires=(
                "envd-native>=1",
                'envd-linux-only; sys_platform == "linux"',
                'envd-mac-only; sys_platform == "darwin"',
            ),
            uploaded="2025-06-01T00:00:00Z",
        ),
        Wheel("envd-native", "1.0", LINUX_TAG),
        Wheel("envd-native", "1.0", MACOS_TAG),
        Wheel("envd-linux-only", "1.0"),
        Wheel("envd-mac-only", "1.0"),
        Wheel("envd-linux-wheel-only", "1.0", LINUX_TAG),
    ]


@contextmanager
def serve_index(
    folder: Path,
    wheels: Sequence[Wheel] | None = None,
    sdists: Sequence[Sdist] = (),
    require_auth: tuple[str, str] | None = None,
    build_backends: bool = False,
) -> Iterator[PypiIndex]:
    """With `sdists` (or `build_backends`), the index also serves the setuptools wheel that
    builds them, and flit_core's (a local project's backend in the tests: it writes nothing
    into the project's folder);
    `require_auth`: (user, password) that every request must carry as HTTP basic auth;
    others get 401."""
    chosen = list(standard_wheels() if wheels is None else wheels)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[Wheel | Sdist, Path]] = {
        w.filename: (w, write_wheel(w, folder)) for w in chosen
    }
    files.update((s.filename, (s, write_sdist(s, folder))) for s in sdists)
    if sdists or build_backends:
        files[SETUPTOOLS_WHEEL.name] = (Wheel("setuptools", "84.2.1"), SETUPTOOLS_WHEEL)
        files[FLIT_CORE_WHEEL.name] = (Wheel("flit-core", "4.1.0"), FLIT_CORE_WHEEL)
    index = PypiIndex("", folder, chosen, sdists=list(sdists))

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _refused(self) -> bool:
            if require_auth is None:
                return False
            expected = base64.b64encode(":".join(require_auth).encode()).decode()
            if self.headers.get("Authorization") == f"Basic {expected}":
                return False
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="envd-tests"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True

        def do_HEAD(self) -> None:
            if self._refused():
                return
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            if parts[:1] == ["files"] and len(parts) == 2 and parts[1] in files:
                self.send_response(200)
                self.send_header("Content-Length", str(files[parts[1]][1].stat().st_size))
                self.end_headers()
            else:
                self.send_error(404)

        def do_GET(self) -> None:
            index.requests.append(self.path)
            if self._refused():
                return
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            if parts[:1] == ["files"] and len(parts) == 2 and parts[1] in files:
                self._send(files[parts[1]][1].read_bytes(), "application/octet-stream")
            elif parts[:1] == ["simple"] and len(parts) == 2:
                self._project(canonicalize_name(parts[1]))
            else:
                self.send_error(404)

        def _project(self, project: str) -> None:
            mine = [(w, p) for w, p in files.values() if canonicalize_name(w.name) == project]
            if not mine:
                self.send_error(404)
                return
            base = f"{index.url.removesuffix('/simple')}/files/"
            entries: list[dict[str, Any]] = [
                {"filename": p.name, "url": base + p.name, "upload-time": w.uploaded,
                 "size": p.stat().st_size,
                 "hashes": {"sha256": hashlib.sha256(p.read_bytes()).hexdigest()}}
                for w, p in mine
            ]  # fmt: skip
            if JSON_TYPE in self.headers.get("Accept", ""):
                doc = {"meta": {"api-version": "1.1"}, "name": project, "files": entries,
                       "versions": sorted({w.version for w, _ in mine})}  # fmt: skip
                self._send(json.dumps(doc).encode(), JSON_TYPE)
                return
            links = "".join(
                f'<a href="{html.escape(e["url"])}#sha256={e["hashes"]["sha256"]}">'
                f"{html.escape(e['filename'])}</a>\n"
                for e in entries
            )
            self._send(f"<html><body>\n{links}</body></html>\n".encode(), "text/html")

        def _send(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    index.url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_find_links(
    folder: Path, wheels: Sequence[Wheel], sdists: Sequence[Sdist] = (), extra: Sequence[Path] = ()
) -> Iterator[tuple[str, list[str]]]:
    """A `--find-links` page over loopback: `(url, requests)`, where `url` (`…/links/`) is one
    flat HTML page of relative links (with `#sha256=`) to the wheels, sdists and `extra` files
    (e.g. `SETUPTOOLS_WHEEL`), served next to it."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {w.filename: write_wheel(w, folder) for w in wheels}
    files.update((s.filename, write_sdist(s, folder)) for s in sdists)
    files.update((p.name, p) for p in extra)
    page = "".join(
        f'<a href="{html.escape(name)}#sha256={hashlib.sha256(p.read_bytes()).hexdigest()}">'
        f"{html.escape(name)}</a><br>\n"
        for name, p in files.items()
    )
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            name = self.path.split("?")[0].removeprefix("/links/")
            if name not in files:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(files[name].stat().st_size))
            self.end_headers()

        def do_GET(self) -> None:
            requests.append(self.path)
            name = self.path.split("?")[0].removeprefix("/links/")
            if self.path.split("?")[0] == "/links/":
                body, kind = f"<html><body>\n{page}</body></html>\n".encode(), "text/html"
            elif name in files:
                body, kind = files[name].read_bytes(), "application/octet-stream"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/links/", requests
    finally:
        server.shutdown()
        server.server_close()
