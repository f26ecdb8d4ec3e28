"""Locked packages: what a lock file pins, per platform, checked before envd trusts it.

A lock imported with `resolve --from-lock` travels as the spec's `locked` form: the packages of
every platform of the lock, each with its URL and hashes. The req_id of such a spec is computed
from these packages alone (sorted, so a lock's order, comments and file format don't matter).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from packaging.version import InvalidVersion, Version
from rattler import PackageName
from rattler import Version as CondaVersion

from envd.errors import InvalidLockError, UnknownPlatformError
from envd.platforms import check_platform
from envd.redaction import CONDA_TOKEN, redact_url

KINDS = ("conda", "pypi")
CONDA_SUFFIXES = (".conda", ".tar.bz2")
URL_SCHEMES = ("http", "https", "file")
NOARCH_KINDS = (None, "generic", "python")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")
# PEP 508 names (the core metadata spec's regular expression)
_PYPI_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_HINT = "fix or regenerate the lock file (e.g. `conda-lock lock`, `pixi lock`)"
_TOKEN_HINT = (
    "remove `/t/<token>/` from the lock's URLs and give agents the token as channel "
    "credentials (`ENVD_CHANNEL_TOKEN=HOST[:PORT]=TOKEN`, or `~/.netrc`)"
)


@dataclass(frozen=True, slots=True, order=True)
class LockedPackage:
    """One pinned package of one platform. `channel` is the channel URL a conda package's URL
    lies in (the URL without `/<subdir>/<filename>`) and the index origin of a PyPI one;
    `sha256` may be empty only for an `@EXPLICIT` entry that carries an md5."""

    kind: str
    name: str
    version: str
    build: str
    url: str
    filename: str
    sha256: str
    md5: str | None
    size: int | None
    depends: tuple[str, ...]
    channel: str
    subdir: str
    # conda only, when the lock records them (pixi.lock): the archive's build number and
    # noarch kind (`generic`, `python`), which a lock written from the description needs
    build_number: int | None = None
    noarch: str | None = None

    def to_canonical(self) -> dict[str, Any]:
        """Without `build_number` and `noarch` when not recorded: a lock that has none keeps
        the req_id it had before envd read them."""
        data: dict[str, Any] = {
            "kind": self.kind, "name": self.name, "version": self.version, "build": self.build,
            "url": self.url, "filename": self.filename, "sha256": self.sha256, "md5": self.md5,
            "size": self.size, "depends": list(self.depends), "channel": self.channel,
            "subdir": self.subdir,
        }  # fmt: skip
        if self.build_number is not None:
            data["build_number"] = self.build_number
        if self.noarch is not None:
            data["noarch"] = self.noarch
        return data

    @classmethod
    def from_canonical(cls, data: dict[str, Any]) -> LockedPackage:
        return cls(**{**data, "depends": tuple(data["depends"])})


@dataclass(frozen=True, slots=True, order=True)
class LockedPlatform:
    """The packages a lock pins for one platform, sorted. In a job for another platform only
    the summary travels (`packages` empty, `known_digest` and `known_kinds` set)."""

    platform: str
    packages: tuple[LockedPackage, ...]
    known_digest: str = ""
    known_kinds: tuple[str, ...] = ()

    def digest(self) -> str:
        """`sha256:` and the hex sha256 of the packages' canonical JSON list (sorted)."""
        if self.known_digest:
            return self.known_digest
        data = json.dumps([p.to_canonical() for p in self.packages], sort_keys=True,
                          separators=(",", ":"), ensure_ascii=False)  # fmt: skip
        return "sha256:" + hashlib.sha256(data.encode()).hexdigest()

    def kinds(self) -> tuple[str, ...]:
        return self.known_kinds or tuple(sorted({p.kind for p in self.packages}))

    def summary(self) -> dict[str, Any]:
        """What the canonical spec (and so req_id and descriptions) holds of a platform."""
        return {"sha256": self.digest(), "kinds": list(self.kinds())}


def noarch_name(kind: Any) -> str | None:
    """py-rattler's `NoArchType` (a record's `noarch`) → `generic`, `python` or None."""
    return None if kind is None or kind.none else "python" if kind.python else "generic"


def locked_platforms(found: dict[str, Iterable[LockedPackage]]) -> tuple[LockedPlatform, ...]:
    """Sorted platforms, each with its sorted packages: one value per lock content."""
    return tuple(
        LockedPlatform(platform, tuple(sorted(set(found[platform])))) for platform in sorted(found)
    )


def locked_channels(locked: Iterable[LockedPlatform]) -> tuple[str, ...]:
    """The channel URLs the conda packages come from, sorted: what channel policy checks."""
    return tuple(sorted({p.channel for lp in locked for p in lp.packages if p.kind == "conda"}))


def channel_of(url: str, subdir: str) -> str:
    """The channel URL of a conda archive URL `<channel>/<subdir>/<filename>`."""
    head = url.rsplit("/", 1)[0]
    return head[: -len(subdir) - 1] if head.endswith("/" + subdir) else head


def index_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def check_locked_package(package: LockedPackage, platform: str, where: str) -> LockedPackage:
    """Return `package` if it is a package envd can trust to name an archive, else raise
    `InvalidLockError` naming `where` (the file and entry) and the field that is wrong."""

    def bad(reason: str) -> InvalidLockError:
        label = f"`{package.name}`" if package.name else "an entry"
        return InvalidLockError(f"invalid lock entry {label} at {where}: {reason}", hint=_HINT)

    if package.kind not in KINDS:
        raise bad(f"kind `{package.kind}` is neither `conda` nor `pypi`")
    if not package.url:
        raise bad("it has no URL")
    parts = urlsplit(package.url)
    if CONDA_TOKEN.search(parts.path):  # anaconda.org's `/t/<token>/`: a secret in the path
        raise InvalidLockError(
            f"{bad('').message}its URL `{redact_url(package.url)}` carries an anaconda.org "
            "token; it would be written into ids, descriptions and exports",
            hint=_TOKEN_HINT,
        )
    if parts.scheme not in URL_SCHEMES or not (parts.netloc or parts.scheme == "file"):
        raise bad(
            f"`{redact_url(package.url)}` is not an http(s) or file URL of an archive; envd "
            "imports archives, not local paths or source checkouts"
        )
    if parts.username or parts.password:
        raise bad("its URL carries credentials; give agents credentials in `~/.netrc`")
    if package.filename != parts.path.rsplit("/", 1)[-1] or "\\" in package.filename:
        raise bad(f"its filename `{package.filename}` is not the last part of its URL")
    if not _SHA256.match(package.sha256):
        if package.sha256:
            raise bad(f"its sha256 `{package.sha256}` is not 64 lowercase hex characters")
        if package.md5 is None:
            raise bad("it has no sha256 (nor an md5) to check its archive against")
    if package.md5 is not None and not _MD5.match(package.md5):
        raise bad(f"its md5 `{package.md5}` is not 32 lowercase hex characters")
    if package.size is not None and package.size < 0:
        raise bad(f"its size {package.size} is negative")
    if package.build_number is not None and package.build_number < 0:
        raise bad(f"its build number {package.build_number} is negative")
    if package.noarch not in NOARCH_KINDS:
        raise bad(f"its noarch kind `{package.noarch}` is neither `generic` nor `python`")
    if package.kind == "pypi" and (package.build_number is not None or package.noarch):
        raise bad("a PyPI package has no build number or noarch kind")
    if package.kind == "conda":
        _check_conda(package, platform, bad)
    else:
        _check_pypi(package, bad)
    return package


def _check_conda(package: LockedPackage, platform: str, bad: Any) -> None:
    try:
        name = PackageName(package.name)
        CondaVersion(package.version)
    except Exception as err:  # py-rattler's parse errors: each a different class
        raise bad(f"invalid name or version: {err}") from err
    if name.normalized != package.name:
        raise bad(f"the name is not in its normalized form `{name.normalized}`")
    if not package.filename.endswith(CONDA_SUFFIXES):
        raise bad(f"`{package.filename}` is not a `.conda` or `.tar.bz2` archive")
    if package.subdir not in (platform, "noarch"):
        raise bad(f"its subdir `{package.subdir}` is neither `{platform}` nor `noarch`")
    if not package.build:
        raise bad("it has no build string")


def _check_pypi(package: LockedPackage, bad: Any) -> None:
    if not _PYPI_NAME.match(package.name):
        raise bad("the name is not a valid PyPI project name")
    try:
        Version(package.version)
    except InvalidVersion as err:
        raise bad(f"version `{package.version}` is not a PEP 440 version") from err
    if package.build:
        raise bad("a PyPI package has no build string")


def check_locked(locked: Iterable[LockedPlatform], where: str) -> tuple[LockedPlatform, ...]:
    """Every platform known, no (kind, name) twice on one platform, every package valid."""
    checked = []
    for entry in locked:
        try:
            check_platform(entry.platform)
        except UnknownPlatformError as err:
            raise InvalidLockError(f"{err.message} in {where}", hint=err.hint) from err
        if not entry.packages:
            raise InvalidLockError(f"platform `{entry.platform}` of {where} has no packages")
        seen: dict[tuple[str, str], LockedPackage] = {}
        for index, package in enumerate(entry.packages):
            check_locked_package(package, entry.platform, f"{where} {entry.platform}[{index}]")
            key = (package.kind, package.name)
            if seen.setdefault(key, package) != package:  # the same one twice (categories): one
                raise InvalidLockError(
                    f"{where} pins {package.kind} package `{package.name}` twice for "
                    f"`{entry.platform}`",
                    hint=_HINT,
                )
        checked.append(entry)
    return locked_platforms({e.platform: e.packages for e in checked})


def locked_to_canonical(
    locked: Iterable[LockedPlatform], full: str | None = None
) -> dict[str, Any]:
    """Each platform's summary (its packages' digest and kinds); the packages themselves for
    the platform `full` (a job's, which must take them from the lock)."""
    return {
        lp.platform: [p.to_canonical() for p in lp.packages] if lp.platform == full
        else lp.summary()
        for lp in locked
    }  # fmt: skip


def locked_from_canonical(data: dict[str, Any]) -> tuple[LockedPlatform, ...]:
    """From a job's canonical spec: one platform's packages, the others' summaries."""
    found = []
    for platform, value in sorted(data.items()):
        if isinstance(value, list):
            packages = tuple(sorted(LockedPackage.from_canonical(p) for p in value))
            found.append(LockedPlatform(platform, packages))
        else:
            found.append(LockedPlatform(platform, (), value["sha256"], tuple(value["kinds"])))
    return tuple(found)
