"""Reads a `pylock.toml` (PEP 751) as uv writes it into the packages of one target."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.markers import InvalidMarker, Marker
from packaging.utils import InvalidWheelFilename, canonicalize_name

from envd.description import ResolvedPackage
from envd.errors import InternalError, PypiNotAvailableError, WheelBuildError
from envd.markers import marker_environment
from envd.spec import source_url

from .pypi_target import PypiTarget
from .source_inputs import source_of
from .wheel_fit import wheel_misfit, wheel_rank, wheel_subdir

_SHA256_HEX = 64


@dataclass(frozen=True, slots=True)
class SourceArchive:
    """Where the source of a package to build is, and the sha256 it must have."""

    url: str
    filename: str
    sha256: str
    size: int | None
    index: str


@dataclass(frozen=True, slots=True)
class Unbuilt:
    """A package the lock chose that has no wheel for the target: built natively from
    `source` (an sdist or archive with a sha256, a local source by its `envd-source://` URL;
    None for a source envd can't verify by sha256: git)."""

    name: str
    version: str
    why: str  # "sdist only", "git source", "URL source", "local source", "no wheel for …"
    source: SourceArchive | None = None

    def shown(self) -> str:
        """ "crcmod 1.7 (sdist only)", as statuses and errors name it."""
        return f"{self.name} {self.version} ({self.why})"


@dataclass(frozen=True, slots=True)
class LockPackages:
    packages: tuple[ResolvedPackage, ...]  # sorted by name
    unbuilt: tuple[Unbuilt, ...]


def read_pylock(
    text: str, target: PypiTarget, indexes: Sequence[str]
) -> tuple[ResolvedPackage, ...]:
    """The lock's packages that apply on the target, each with its best wheel for it, sorted by
    name; packages without one are refused at once, all of them named."""
    found = read_lock_packages(text, target, indexes)
    if found.unbuilt:
        raise needs_build_error(found.unbuilt, target.platform)
    return found.packages


def read_lock_packages(text: str, target: PypiTarget, indexes: Sequence[str]) -> LockPackages:
    """The lock's packages that apply on the target: those with a wheel for it, and those to
    build (with their source, when it is an archive with a sha256)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InternalError(f"failed to read uv's pylock.toml: {err}") from err
    packages: list[ResolvedPackage] = []
    unbuilt: list[Unbuilt] = []
    for entry in doc.get("packages", []):
        if not _applies(entry, target):
            continue
        chosen = _package(entry, target, indexes)
        if isinstance(chosen, Unbuilt):
            unbuilt.append(chosen)
        else:
            packages.append(chosen)
    return LockPackages(tuple(sorted(packages, key=lambda p: p.name)), tuple(unbuilt))


def needs_build_error(
    unbuilt: Sequence[Unbuilt], platform: str, *, sourceless: bool = False
) -> PypiNotAvailableError:
    """For a resolver without native builds, or (`sourceless`) packages whose index has
    neither a wheel for the target nor a source to build one from."""
    names = ", ".join(f"`{u.name} {u.version}` ({u.why})" for u in unbuilt)
    noun = "package" if len(unbuilt) == 1 else "packages"
    verb = "needs" if len(unbuilt) == 1 else "need"
    why = (f"the index has no source to build {'it' if len(unbuilt) == 1 else 'them'} from"
           if sourceless else "this resolver builds no wheels")  # fmt: skip
    return PypiNotAvailableError(
        f"failed to resolve PyPI requirements for `{platform}`: {noun} {names} {verb} a native "
        f"build on an agent of `{platform}`: {why}",
        hint="pin a version that publishes a wheel for this target (for Linux, a newer "
        "`--virtual-package __glibc=2.28` admits newer manylinux wheels), or leave it out",
    )


def _applies(entry: dict[str, Any], target: PypiTarget) -> bool:
    """uv resolves for one target, so its entries carry no markers; one that does is
    evaluated for the target (never for the agent's machine)."""
    text = entry.get("marker")
    if not text:
        return True
    env = marker_environment(target.platform, f"=={target.python_version}")
    env.setdefault("python_full_version", f"{target.python_version}.0")
    env.update(implementation_name="cpython", platform_python_implementation="CPython")
    try:
        return Marker(text).evaluate(env)
    except InvalidMarker as err:
        raise InternalError(f"failed to read uv's pylock.toml: marker `{text}`: {err}") from err


def _package(
    entry: dict[str, Any], target: PypiTarget, indexes: Sequence[str]
) -> ResolvedPackage | Unbuilt:
    name = canonicalize_name(str(entry.get("name", "")))
    version = str(entry.get("version", ""))
    if not name or not version:
        raise InternalError(f"failed to read uv's pylock.toml: an entry has no name or version: "
                            f"{sorted(entry)}")  # fmt: skip
    wheels = entry.get("wheels") or []
    ranked = [(rank, wheel) for wheel in wheels
              if (rank := wheel_rank(_filename(wheel), target)) is not None]  # fmt: skip
    if not ranked:
        return _unbuilt(entry, name, version, target, indexes)
    _, wheel = min(ranked, key=lambda pair: pair[0])
    filename = _filename(wheel)
    return _wheel_package(
        name, version, _index(entry, wheel, indexes), str(wheel.get("url") or wheel.get("path")),
        filename, _sha256(wheel, filename), wheel.get("size"), target,
    )  # fmt: skip


def _wheel_package(
    name: str, version: str, channel: str, url: str, filename: str, sha256: str,
    size: int | None, target: PypiTarget,
) -> ResolvedPackage:  # fmt: skip
    return ResolvedPackage(
        kind="pypi", name=name, version=version, build="", channel=channel, url=url,
        filename=filename, sha256=sha256, md5=None, size=size,
        subdir=wheel_subdir(filename, target),
    )  # fmt: skip


def _unbuilt(
    entry: dict[str, Any], name: str, version: str, target: PypiTarget, indexes: Sequence[str]
) -> ResolvedPackage | Unbuilt:
    """What to build, and from what: the sdist, or an archive (PEP 751 `archive`: at a URL, or
    a local source the resolve fetched from the store, named again by its `envd-source://`
    URL); an archive that is a wheel is used as it is. Git has no sha256 to verify: no source."""
    if entry.get("wheels"):
        why = f"no wheel for `{target.python_platform}`, python {target.python_version}"
    else:
        why = next(
            (w for key, w in _SOURCE_KINDS if entry.get(key)), "no wheel or source in the lock"
        )
    for key in ("sdist", "archive"):
        source = entry.get(key)
        if isinstance(source, dict) and (source.get("url") or source.get("path")):
            archive = _archive(entry, source, indexes)
            if archive.filename.endswith(".whl"):
                return _archive_wheel(name, version, archive, target)
            local = source_of(str(source.get("path") or "")) is not None
            return Unbuilt(name, version, "local source" if local else why, archive)
    return Unbuilt(name, version, why)


def _archive(
    entry: dict[str, Any], source: dict[str, Any], indexes: Sequence[str]
) -> SourceArchive:
    """The source as envd names it: a local source by its content address, never by the
    resolve's temp path (uv hashed the file fetch_sources verified: the two must agree)."""
    filename = _filename(source)
    sha256 = _sha256(source, filename)
    url = str(source.get("url") or source.get("path"))
    local = source_of(str(source.get("path") or ""))
    if local is not None:
        if local[0] != sha256:
            raise InternalError(
                f"failed to read uv's pylock.toml: local source `{local[1]}` has sha256 "
                f"`{sha256}`, but was fetched and verified as `{local[0]}`"
            )
        url, filename = source_url(*local), local[1]
    return SourceArchive(url=url, filename=filename, sha256=sha256, size=source.get("size"),
                         index=_index(entry, source, indexes))  # fmt: skip


def _archive_wheel(
    name: str, version: str, archive: SourceArchive, target: PypiTarget
) -> ResolvedPackage:
    """A wheel given as a file or URL: used as it is when it installs on the target, never
    rebuilt; otherwise refused with both tags."""
    try:
        misfit = wheel_misfit(archive.filename, target)
    except InvalidWheelFilename as err:
        raise WheelBuildError(
            f"failed to use `{archive.filename}` for `{name} {version}`: not a valid wheel "
            f"filename: {err}",
            hint="a wheel's filename carries its tags (PEP 427): name the file as it was built",
        ) from err
    if misfit is not None:
        raise WheelBuildError(
            f"failed to use the wheel `{archive.filename}` of `{name} {version}` for "
            f"`{target.platform}`: {misfit}",
            hint="give a wheel built for the target (or a pure-python one), or the project's "
            "folder or sdist, which envd builds on an agent of the target",
        )
    return _wheel_package(name, version, archive.index, archive.url, archive.filename,
                          archive.sha256, archive.size, target)  # fmt: skip


_SOURCE_KINDS = (("sdist", "sdist only"), ("vcs", "git source"), ("archive", "URL source"),
                 ("directory", "local source"))  # fmt: skip


def _filename(wheel: dict[str, Any]) -> str:
    if wheel.get("name"):
        return str(wheel["name"])
    location = str(wheel.get("url") or wheel.get("path") or "")
    return unquote(urlsplit(location).path.rpartition("/")[2])


def _sha256(wheel: dict[str, Any], filename: str) -> str:
    value = str((wheel.get("hashes") or {}).get("sha256", "")).lower()
    if len(value) != _SHA256_HEX or any(c not in "0123456789abcdef" for c in value):
        raise InternalError(
            f"failed to read uv's pylock.toml: `{filename}` has no sha256",
            hint="envd verifies every wheel: use an index that publishes sha256 hashes",
        )
    return value


def _index(entry: dict[str, Any], wheel: dict[str, Any], indexes: Sequence[str]) -> str:
    """The index the package came from: the lock's `index` when it says, else the spec's index
    on the wheel's host, else the primary one."""
    if entry.get("index"):
        return str(entry["index"]).rstrip("/")
    host = urlsplit(str(wheel.get("url", ""))).netloc
    for index in indexes:
        if urlsplit(index).netloc == host:
            return index
    return indexes[0]
