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
FILENAME = f"python-{VERSION}-{BUILD}.tar.bz2"


def standin_script(calls: Path) -> bytes:
    host = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    if not host.exists():
        host = Path(sys.executable)
    return f'#!/bin/sh\necho "$0 $*" >> "{calls}"\nexec "{host}" "$@"\n'.encode()


def python_archive(folder: Path, calls: Path, subdir: str = "linux-64") -> Path:
    """Write `python-3.11.7-h0_0.tar.bz2` into `folder`; its interpreters log to `calls`."""
    script = standin_script(calls)
    index = {"name": "python", "version": VERSION, "build": BUILD, "build_number": 0,
             "subdir": subdir, "depends": [], "license": "PSF-2.0"}  # fmt: skip
    files = ["bin/python", "bin/python3.11"]
    paths = {"paths_version": 1, "paths": [
        {"_path": f, "path_type": "hardlink", "sha256": hashlib.sha256(script).hexdigest(),
         "size_in_bytes": len(script)} for f in files
    ]}  # fmt: skip
    members = {
        "info/index.json": (json.dumps(index).encode(), 0o644),
        "info/paths.json": (json.dumps(paths).encode(), 0o644),
        "info/files": ("\n".join(files).encode() + b"\n", 0o644),
        **{f: (script, 0o755) for f in files},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILENAME
    with tarfile.open(path, "w:bz2") as tar:
        for name, (data, mode) in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return path


def python_channel(folder: Path, calls: Path, subdir: str = "linux-64") -> Path:
    """A channel folder holding the stand-in python, with `repodata.json` for `subdir` (from
    the archive's bytes) and an empty `noarch`. Returns the archive."""
    archive = python_archive(folder / subdir, calls, subdir)
    data = archive.read_bytes()
    record: dict[str, Any] = {
        **json.loads(
            tarfile.open(archive).extractfile("info/index.json").read()  # type: ignore[union-attr]
        ),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),
    }
    for name, packages in ((subdir, {archive.name: record}), ("noarch", {})):
        (folder / name).mkdir(parents=True, exist_ok=True)
        repodata = {"info": {"subdir": name}, "packages": packages, "packages.conda": {},
                    "repodata_version": 1}  # fmt: skip
        (folder / name / "repodata.json").write_text(json.dumps(repodata), "utf-8")
    return archive
