"""What a conda archive says about itself: its `info/index.json`, and whether its files match
its `info/paths.json`."""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

from conda_package_streaming.package_streaming import stream_conda_component

from envd.errors import ArchiveIntegrityError

INDEX_JSON = "info/index.json"
PATHS_JSON = "info/paths.json"
# What reading a damaged archive raises from the zip and tar layers (and conda-package-streaming
# when a `.conda` lacks a component).
_UNREADABLE = (tarfile.TarError, zipfile.BadZipFile, OSError, ValueError, EOFError, LookupError)
_KINDS = {
    tarfile.REGTYPE: "regular file",
    tarfile.AREGTYPE: "regular file",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hard link",
    tarfile.DIRTYPE: "directory",
}


def read_info(path: Path, names: tuple[str, ...] = (INDEX_JSON,)) -> dict[str, bytes]:
    """The named `info/` files of the archive at `path` (those it has), streamed."""
    found: dict[str, bytes] = {}
    try:
        with path.open("rb") as f:
            for tar, member in stream_conda_component(path.name, f, component="info"):
                if member.name in names and member.isfile():
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        found[member.name] = extracted.read()
                if len(found) == len(names):
                    break
    except _UNREADABLE as err:
        raise ArchiveIntegrityError(
            f"failed to read `{path.name}` from the store: {err}", hint=_HINT
        ) from err
    return found


def read_index(path: Path) -> dict[str, Any]:
    """The archive's own `info/index.json` (what it says it is)."""
    data = read_info(path).get(INDEX_JSON)
    try:
        index = json.loads(data or b"")
    except ValueError:
        index = None
    if not isinstance(index, dict):
        raise ArchiveIntegrityError(
            f"failed to read `{path.name}` from the store: it has no valid `{INDEX_JSON}`",
            hint=_HINT,
        )
    return index


def payload_problem(path: Path) -> str | None:
    """The first file whose kind or size in the archive differs from its `info/paths.json`
    (which is what an installer links by), in words; None when they agree or there is no
    `info/paths.json` to compare with (older packages)."""
    data = read_info(path, (PATHS_JSON,)).get(PATHS_JSON)
    if data is None:
        return None
    try:
        entries = {e["_path"]: e for e in json.loads(data)["paths"]}
    except (ValueError, KeyError, TypeError):
        return f"its `{PATHS_JSON}` is not valid"
    members: dict[str, tarfile.TarInfo] = {}
    try:
        with path.open("rb") as f:
            for _, member in stream_conda_component(path.name, f, component="pkg"):
                members[member.name] = member
    except _UNREADABLE as err:
        return f"its files cannot be read: {err}"
    for name, entry in entries.items():
        problem = _entry_problem(entry, members.get(name))
        if problem is not None:
            return f"`{name}` {problem}"
    return None


def _entry_problem(entry: dict[str, Any], member: tarfile.TarInfo | None) -> str | None:
    said = entry.get("path_type", "hardlink")
    if member is None:
        return f"is listed in `{PATHS_JSON}` but not in the archive"
    kind = _KINDS.get(member.type, f"member of tar type `{member.type.decode()}`")
    if said == "softlink":
        if not member.issym():
            return f"is a {_sized(kind, member)} in the archive where `{PATHS_JSON}` says symlink"
        if not member.linkname:
            return "is a symlink with no target in the archive"
    elif said == "hardlink":
        if not (member.isreg() or member.islnk()):
            return f"is a {kind} in the archive where `{PATHS_JSON}` says file"
        size = entry.get("size_in_bytes")
        if member.isreg() and size is not None and member.size != size:
            return f"has {member.size} bytes in the archive where `{PATHS_JSON}` says {size}"
    elif said == "directory" and not member.isdir():
        return f"is a {kind} in the archive where `{PATHS_JSON}` says directory"
    return None


def _sized(kind: str, member: tarfile.TarInfo) -> str:
    return f"{kind} of {member.size} bytes" if member.isreg() else kind


_HINT = "the stored archive is corrupt; delete it and resolve again with `--force`"
