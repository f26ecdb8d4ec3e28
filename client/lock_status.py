"""`status --lock`: whether a lock file still satisfies a spec (pure logic, then the command).

A lock satisfies a spec when its channels are the spec's (in order), it pins every platform the
spec targets, and on each of them every top-level dependency — conda (python included) and
PyPI — is pinned at a version its constraint accepts: rattler's `MatchSpec` for conda,
packaging's `SpecifierSet` for PyPI. Only what the spec means is compared, so comments,
whitespace and order in either file never make a lock stale; packages the lock pins beyond the
top-level ones are its solver's business.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from envd.channels import DEFAULT_CHANNEL_ALIAS, channel_url
from envd.locks import LockedPackage
from envd.redaction import mask_url
from envd.spec import Spec

from .lock_readers import Lock, LockFormat

if TYPE_CHECKING:
    from .config import ClientConfig


class LockState(StrEnum):
    UP_TO_DATE = "up-to-date"
    OUT_OF_DATE = "out-of-date"
    MISSING = "missing"


# `status`'s exit codes, outside the error table (1 to 7, 70) so a script can tell them apart
EXIT_CODES = {LockState.UP_TO_DATE: 0, LockState.OUT_OF_DATE: 10, LockState.MISSING: 11}
_IGNORED_CHANNELS = frozenset({"nodefaults"})


@dataclass(frozen=True, slots=True)
class LockStatus:
    status: LockState
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"status": str(self.status), "reason": self.reason}


def lock_status(spec: Spec, platforms: Sequence[str], lock: Lock | None, path: Path) -> LockStatus:
    """The status of `lock` (None: no file at `path`) against `spec` on `platforms`; the reason
    names the first thing that differs."""
    if lock is None:
        return LockStatus(LockState.MISSING, f"Lock file '{path}' does not exist")
    reason = _channel_reason(spec, lock)
    for platform in platforms:
        if reason is not None:
            break
        packages = lock.packages_for(platform)
        if packages is None:
            reason = f"Platform '{platform}' is required but not in the lock"
        else:
            reason = _dependency_reason(spec, platform, packages)
    if reason is not None:
        return LockStatus(LockState.OUT_OF_DATE, reason)
    return LockStatus(LockState.UP_TO_DATE)


def _channel_reason(spec: Spec, lock: Lock) -> str | None:
    wanted = [_url(c) for c in spec.channels]
    have = [_url(c) for c in lock.channels if c not in _IGNORED_CHANNELS]
    for channel in have:
        if channel not in wanted:
            return f"Channel '{channel}' is in the lock but not in the spec"
    if lock.format is LockFormat.EXPLICIT:
        return None  # an explicit file names only the channels its packages come from
    for channel in wanted:
        if channel not in have:
            return f"Channel '{channel}' is required but not in the lock"
    if wanted != have:
        return (
            "Channels are in another order in the lock: "
            + ", ".join(f"'{c}'" for c in have)
            + " (the spec: "
            + ", ".join(f"'{c}'" for c in wanted)
            + ")"
        )
    return None


def _url(channel: str) -> str:
    return channel_url(channel, DEFAULT_CHANNEL_ALIAS).rstrip("/")


def _dependency_reason(spec: Spec, platform: str, packages: Sequence[LockedPackage]) -> str | None:
    from rattler import MatchSpec

    conda = {p.name: p for p in packages if p.kind == "conda"}
    pypi = {p.name: p for p in packages if p.kind == "pypi"}
    for text in spec.conda_specs_for(platform):
        match = MatchSpec(text)
        name = match.name.normalized if match.name is not None else text
        found = conda.get(name)
        if found is None:
            return _not_found(name, platform)
        if not match.matches(_record(found)):
            return _mismatch(name, text, found, platform)
    for text in spec.pypi_requirements_for(platform):
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        found = pypi.get(name) or conda.get(name)  # a PyPI need a conda package may meet
        if found is None:
            return _not_found(name, platform)
        if not _pypi_satisfies(requirement, found.version):
            return _mismatch(name, text, found, platform)
        if requirement.url and requirement.url != found.url:
            # a direct reference (a packed local or git source: `envd-source://sha256/…`) is
            # met only by the same artifact: an edited directory or a moved git rev is stale
            return (
                f"Dependency '{name}' requires '{mask_url(requirement.url)}' but the lock has "
                f"'{mask_url(found.url)}' for platform '{platform}'"
            )
    return None


def _not_found(name: str, platform: str) -> str:
    return f"Dependency '{name}' is required but not found in the lock for platform '{platform}'"


def _mismatch(name: str, text: str, found: LockedPackage, platform: str) -> str:
    return (
        f"Dependency '{name}' requires '{text}' but the lock has version '{found.version}' "
        f"for platform '{platform}'"
    )


def _pypi_satisfies(requirement: Requirement, version: str) -> bool:
    try:
        return requirement.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:  # a conda version PEP 440 can't read: the specifier can't accept it
        return False


def _record(package: LockedPackage) -> Any:
    from rattler import BuildString, PackageName, PackageRecord, VersionWithSource

    from .lock_export import build_number

    return PackageRecord(
        name=PackageName(package.name),
        version=VersionWithSource(package.version),
        build=BuildString(package.build),
        build_number=build_number({"build": package.build, "build_number": package.build_number}),
        subdir=package.subdir,
    )


def cmd_status(args: argparse.Namespace, config: ClientConfig) -> int:
    """`envd-client status -f SPEC… --lock PATH [--json]`: reads files only, starts nothing."""
    from envd.platforms import host_platform_name
    from envd.spec_input import require_channels

    from . import render
    from .cli import load_request
    from .lock_readers import read_lock

    loaded, _ = load_request(args)
    require_channels(loaded.spec)
    path: Path = args.lock
    lock = read_lock(path) if path.exists() else None
    # the platforms asked for, else the spec files', else the lock's own
    platforms = list(args.arch) or list(loaded.platforms)
    if not platforms:
        platforms = [lp.platform for lp in lock.platforms] if lock else [host_platform_name()]
    from .local_sources import packed_sources

    # local and git sources count by content, as `resolve` sends them: packed, not uploaded
    with packed_sources(loaded.spec, config.home / "cache" / "sources-tmp") as packed:
        result = lock_status(packed.spec, platforms, lock, path)
    if args.json:
        render.print_json({**result.to_json(), "lock": str(path), "platforms": platforms})
    else:
        print(str(result.status) + (f": {result.reason}" if result.reason else ""))
    return EXIT_CODES[result.status]
