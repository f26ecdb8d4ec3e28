"""A real conda package named `python` for tests, standing in for conda-forge's python: no
channel with real python archives is reachable from the tests, so its `bin/python` and
`bin/python3.11` are shell scripts that note each call in `calls` then exec the host
interpreter. Everything else about it is real: a `.tar.bz2` with `info/index.json`,
`info/paths.json` and `info/files`, in a channel folder whose `repodata.json` the tests write
from the archive's bytes."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

VERSION = "3.11.7"
BUILD = "h0_0"


def standin_script(calls: Path) -> bytes:
    host = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    if not host.exists():
        host = Path(sys.executable)
    return f'#!/bin/sh\necho "$0 $*" >> "{calls}"\nexec "{host}" "$@"\n'.encode()


def python_archive(folder: Path, calls: Path, subdir: str = "linux-64") -> Path:
    """Write `python-3.11.7-h0_0.tar.bz2` into `folder`; its interpreters log to `calls`."""
    script = standin_script(calls)
    files = {"bin/python": script, "bin/python3.11": script}
    return conda_archive(folder, "python", VERSION, BUILD, subdir, files)


def conda_archive(
    folder: Path, name: str, version: str, build: str, subdir: str, files: dict[str, bytes]
) -> Path:
    """A `.tar.bz2` conda package of executable `files` (path → bytes) and no dependencies."""
    index = {"name": name, "version": version, "build": build, "build_number": 0,
             "subdir": subdir, "depends": [], "license": "PSF-2.0"}  # fmt: skip
    paths = {"paths_version": 1, "paths": [
        {"_path": f, "path_type": "hardlink", "sha256": hashlib.sha256(data).hexdigest(),
         "size_in_bytes": len(data)} for f, data in files.items()
    ]}  # fmt: skip
    members = {
        "info/index.json": (json.dumps(index).encode(), 0o644),
        "info/paths.json": (json.dumps(paths).encode(), 0o644),
        "info/files": ("".join(f"{f}\n" for f in files).encode(), 0o644),
        **{f: (data, 0o755) for f, data in files.items()},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-{build}.tar.bz2"
    with tarfile.open(path, "w:bz2") as tar:
        for name, (data, mode) in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return path


def python_channel(folder: Path, calls: Path, subdir: str = "linux-64") -> Path:
    """A channel folder holding the stand-in python and `envd-tool 1.0` (a conda package with
    one script: a spec needs a conda dependency besides python to be mixed), with
    `repodata.json` for `subdir` (from the archives' bytes) and an empty `noarch`. Returns the
    python archive."""
    archive = python_archive(folder / subdir, calls, subdir)
    tool = conda_archive(folder / subdir, "envd-tool", "1.0", "0", subdir,
                         {"bin/envd-tool": b"#!/bin/sh\necho envd-tool\n"})  # fmt: skip
    records: dict[str, Any] = {}
    for path in (archive, tool):
        data = path.read_bytes()
        with tarfile.open(path) as tar:
            index = json.load(tar.extractfile("info/index.json"))  # type: ignore[arg-type]
        records[path.name] = {**index, "size": len(data), "md5": hashlib.md5(data).hexdigest(),
                              "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip
    for name, packages in ((subdir, records), ("noarch", {})):
        (folder / name).mkdir(parents=True, exist_ok=True)
        repodata = {"info": {"subdir": name}, "packages": packages, "packages.conda": {},
                    "repodata_version": 1}  # fmt: skip
        (folder / name / "repodata.json").write_text(json.dumps(repodata), "utf-8")
    return archive
