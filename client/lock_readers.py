"""Lock files read into envd's locked packages: conda-lock (v1), pixi.lock and `@EXPLICIT`.

conda-lock files are read as YAML (every scalar a string, so `1.10` stays `1.10`) and checked
field by field, so an error names the file's `package[i]` entry (py-rattler's `LockFile` reads
them too, as its format v0: the tests hold both, and conda-lock's own parser, to the same
packages); pixi.lock with py-rattler's `LockFile`; `@EXPLICIT` files with py-rattler's explicit
environment reader. Every package ends up checked by `envd.locks.check_locked`: a URL, a sha256
(an `@EXPLICIT` entry may carry only an md5), a valid name, a known platform.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import canonicalize_name

from envd.errors import InvalidLockError, InvalidSpecError
from envd.locks import (
    CONDA_SUFFIXES,
    LockedPackage,
    LockedPlatform,
    channel_of,
    check_locked,
    index_of,
    noarch_name,
)
from envd.platforms import check_platform
from envd.spec import RawSpec, Spec, normalize_spec

_HASH = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$|^(?:md5:)?([0-9a-f]{32})$")
_PLATFORM_LINE = re.compile(r"^#\s*platform:\s*(\S+)\s*$", re.MULTILINE)
_LOCK_CHANNEL = re.compile(r'^LockChannel\(url="(.*)"\)$')
_LOADER: Any = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
PIXI_DEFAULT = "default"  # the environment a pixi.lock is read for unless one is named


class LockFormat(StrEnum):
    CONDA_LOCK = "conda-lock"
    PIXI = "pixi"
    EXPLICIT = "explicit"


@dataclass(frozen=True, slots=True)
class Lock:
    """What a lock file pins: its packages per platform, and the channels it declares (names
    or URLs, in its order: what `status` compares with a spec's channels)."""

    path: Path
    format: LockFormat
    platforms: tuple[LockedPlatform, ...]
    channels: tuple[str, ...]

    def packages_for(self, platform: str) -> tuple[LockedPackage, ...] | None:
        for entry in self.platforms:
            if entry.platform == platform:
                return entry.packages
        return None


def read_lock(path: Path, *, platform: str | None = None, environment: str | None = None) -> Lock:
    """Read any of the three formats (told apart by content); `platform` names the platform
    of an `@EXPLICIT` file without a `# platform:` line; `environment`, a pixi.lock's
    environment (`default` when None; refused for the other formats, which have none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise InvalidLockError(
            f"failed to read lock file `{path}`: {reason}", hint="give a readable lock file"
        ) from err
    data = None if "@EXPLICIT" in text else _yaml(path, text)
    is_pixi = isinstance(data, dict) and "environments" in data
    if environment is not None and not is_pixi:
        raise InvalidLockError(
            f"`--lock-environment {environment}` names an environment of a pixi.lock, but "
            f"`{path}` is not one",
            hint="drop `--lock-environment`: conda-lock and `@EXPLICIT` files hold one environment",
        )
    if data is None:
        return read_explicit(path, text, platform)
    if isinstance(data, dict) and "package" in data and "metadata" in data:
        return read_conda_lock(path, data)
    if is_pixi:
        return read_pixi(path, environment or PIXI_DEFAULT)
    raise InvalidLockError(
        f"`{path}` is not a lock file envd reads",
        hint="give a conda-lock.yml (version 1), a pixi.lock or an `@EXPLICIT` file",
    )


def _yaml(path: Path, text: str) -> Any:
    try:
        return yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as err:
        raise InvalidLockError(f"failed to parse lock file `{path}`: {err}") from err


def read_conda_lock(path: Path, data: dict[str, Any]) -> Lock:
    if data.get("version") != "1":
        raise InvalidLockError(
            f"`{path}` is a conda-lock file of version `{data.get('version')}`; envd reads "
            "version 1",
            hint="regenerate it with conda-lock 2 or later",
        )
    metadata = data["metadata"]
    entries = data["package"]
    if not isinstance(metadata, dict) or not isinstance(entries, list):
        raise InvalidLockError(f"`{path}`: `metadata` must be a mapping and `package` a list")
    channels = tuple(
        str(c.get("url", "")) if isinstance(c, dict) else str(c)
        for c in metadata.get("channels") or []
    )
    found: dict[str, list[LockedPackage]] = {p: [] for p in metadata.get("platforms") or []}
    for index, entry in enumerate(entries):
        where = f"`{path}` package[{index}]"
        if not isinstance(entry, dict):
            raise InvalidLockError(f"{where} is not a mapping")
        platform = _field(entry, "platform", where)
        found.setdefault(platform, []).append(_conda_lock_package(entry, platform, where))
    return Lock(path, LockFormat.CONDA_LOCK, _checked(found, path, need_sha256=True), channels)


def _conda_lock_package(entry: dict[str, Any], platform: str, where: str) -> LockedPackage:
    manager, name = _field(entry, "manager", where), _field(entry, "name", where)
    where = f"{where} (`{name}`)"
    url = _field(entry, "url", where)
    hashes = entry.get("hash") or {}
    if not isinstance(hashes, dict):
        raise InvalidLockError(f"{where}: `hash` is not a mapping")
    depends = entry.get("dependencies") or {}
    if not isinstance(depends, dict):
        raise InvalidLockError(f"{where}: `dependencies` is not a mapping")
    filename = url.split("#", 1)[0].rsplit("/", 1)[-1]
    if manager == "conda":
        subdir = url.rsplit("/", 2)[-2] if url.count("/") >= 2 else ""
        return LockedPackage(
            kind="conda", name=name, version=_field(entry, "version", where),
            build=_conda_build(filename), url=url, filename=filename,
            sha256=str(hashes.get("sha256", "")), md5=hashes.get("md5") or None, size=None,
            depends=tuple(_joined(n, s, " ") for n, s in sorted(depends.items())),
            channel=channel_of(url, subdir), subdir=subdir,
        )  # fmt: skip
    if manager == "pip":
        return LockedPackage(
            kind="pypi", name=canonicalize_name(name), version=_field(entry, "version", where),
            build="", url=url, filename=filename, sha256=str(hashes.get("sha256", "")),
            md5=hashes.get("md5") or None, size=None,
            depends=tuple(_joined(n, s, "") for n, s in sorted(depends.items())),
            channel=index_of(url), subdir=platform,
        )  # fmt: skip
    raise InvalidLockError(f"{where}: manager `{manager}` is neither `conda` nor `pip`")


def _joined(name: str, spec: Any, sep: str) -> str:
    text = str(spec or "").strip()
    return name if text in ("", "*") else f"{name}{sep}{text}"


def _field(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidLockError(f"{where}: `{key}` is missing or not a string")
    return value


def _conda_build(filename: str) -> str:
    for suffix in CONDA_SUFFIXES:
        if filename.endswith(suffix):
            parts = filename[: -len(suffix)].rsplit("-", 2)
            return parts[2] if len(parts) == 3 else ""
    return ""


def read_pixi(path: Path, environment: str = PIXI_DEFAULT) -> Lock:
    from rattler import CondaLockedBinaryPackage, LockFile, PypiLockedPackage

    try:
        lock = LockFile.from_path(path)
    except Exception as err:  # py-rattler's parse errors: each a different class
        raise InvalidLockError(f"failed to parse pixi lock `{path}`: {err}") from err
    env = lock.environment(environment)
    if env is None:
        names = ", ".join(f"`{n}`" for n, _ in sorted(lock.environments(), key=lambda e: e[0]))
        raise InvalidLockError(
            f"`{path}` has no environment `{environment}`",
            hint=f"it has {names}: choose one with `--lock-environment NAME`",
        )
    found: dict[str, list[LockedPackage]] = {}
    for platform in env.platforms():
        subdir = str(getattr(platform, "subdir", platform))  # v7 names platforms
        if subdir in found:
            raise InvalidLockError(
                f"`{path}` environment `{environment}` has two platforms for `{subdir}` "
                f"(`{platform}`): envd keeps one environment per platform",
                hint="export one environment per platform, or lock one of them only",
            )
        items = found.setdefault(subdir, [])
        for index, package in enumerate(env.packages(platform) or []):
            where = f"`{path}` environment `{environment}` {platform}[{index}] (`{package.name}`)"
            if isinstance(package, CondaLockedBinaryPackage):
                items.append(_pixi_conda(package.repo_data_record(), where))
            elif isinstance(package, PypiLockedPackage):
                items.append(_pixi_pypi(package, subdir))
            else:
                raise InvalidLockError(
                    f"{where} is a source package, built from `{package.location}`: envd "
                    "imports binary packages only",
                    hint="lock it as a binary package, or leave it out of the environment",
                )
    if not found:
        names = ", ".join(f"`{n}`" for n, _ in lock.environments())
        raise InvalidLockError(
            f"environment `{environment}` of `{path}` pins no platform", hint=f"it has: {names}"
        )
    channels = tuple(_channel_url(c) for c in env.channels())
    return Lock(path, LockFormat.PIXI, _checked(found, path, need_sha256=True), channels)


def _channel_url(channel: Any) -> str:
    """py-rattler's `LockChannel` shows its URL only in its repr: `LockChannel(url="…")`."""
    found = _LOCK_CHANNEL.match(repr(channel))
    return found.group(1) if found else str(channel)


def _pixi_conda(record: Any, where: str) -> LockedPackage:
    subdir = str(record.subdir)
    return LockedPackage(
        kind="conda", name=record.name.normalized, version=str(record.version),
        build=str(record.build), url=str(record.url), filename=str(record.file_name),
        sha256=record.sha256.hex() if record.sha256 else "",
        md5=record.md5.hex() if record.md5 else None, size=record.size,
        depends=tuple(record.depends), channel=channel_of(str(record.url), subdir),
        subdir=subdir, build_number=int(record.build_number), noarch=noarch_name(record.noarch),
    )  # fmt: skip


def _pixi_pypi(package: Any, platform: str) -> LockedPackage:
    url = str(package.location)
    try:
        sha256, md5 = package.hashes.sha256, package.hashes.md5
    except AttributeError:  # py-rattler: a package without hashes has `hashes` wrapping None
        sha256 = md5 = None
    return LockedPackage(
        kind="pypi", name=canonicalize_name(package.name), version=str(package.version),
        build="", url=url, filename=url.rsplit("/", 1)[-1], sha256=sha256.hex() if sha256 else "",
        md5=md5.hex() if md5 else None, size=None, depends=tuple(package.requires_dist),
        channel=index_of(url), subdir=platform,
    )  # fmt: skip


def read_explicit(path: Path, text: str, platform: str | None) -> Lock:
    from rattler.explicit_environment import ExplicitEnvironmentSpec

    try:
        spec = ExplicitEnvironmentSpec.from_str(text)
    except Exception as err:  # py-rattler's parse errors: each a different class
        raise InvalidLockError(f"failed to parse `@EXPLICIT` file `{path}`: {err}") from err
    declared = str(spec.platform) if spec.platform is not None else None
    if declared is not None and platform is not None and declared != platform:
        raise InvalidLockError(
            f"`{path}` says `# platform: {declared}` but `--platform {platform}` was given",
            hint="drop `--platform`, or give the file's platform",
        )
    target = declared or platform
    if target is None:
        raise InvalidLockError(
            f"`{path}` has no `# platform:` line", hint="give its platform with `--platform`"
        )
    packages = [
        _explicit_package(entry.url, f"`{path}` entry {index + 1}")
        for index, entry in enumerate(spec.packages)
    ]
    channels = tuple(dict.fromkeys(p.channel for p in packages))
    return Lock(path, LockFormat.EXPLICIT, _checked({target: packages}, path), channels)


def _explicit_package(url: str, where: str) -> LockedPackage:
    """`<channel>/<subdir>/<name>-<version>-<build>.<ext>[#<md5>|#sha256:<hex>]`"""
    bare, _, fragment = url.partition("#")
    filename = bare.rsplit("/", 1)[-1]
    stem = next((filename[: -len(s)] for s in CONDA_SUFFIXES if filename.endswith(s)), "")
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or bare.count("/") < 3:
        raise InvalidLockError(
            f"{where}: `{filename}` is not a conda archive URL `<channel>/<subdir>/"
            "<name>-<version>-<build>.conda`"
        )
    found = _HASH.match(fragment) if fragment else None
    if fragment and found is None:
        raise InvalidLockError(f"{where} (`{parts[0]}`): `#{fragment}` is not an md5 or sha256")
    subdir = bare.rsplit("/", 2)[-2]
    return LockedPackage(
        kind="conda", name=parts[0], version=parts[1], build=parts[2], url=bare,
        filename=filename, sha256=(found.group(1) or "") if found else "",
        md5=found.group(2) if found else None, size=None, depends=(),
        channel=channel_of(bare, subdir), subdir=subdir,
    )  # fmt: skip


def locked_request(args: argparse.Namespace) -> tuple[Spec, list[str]]:
    """`resolve --from-lock FILE [--platform P…]`: the lock's spec, and the platforms to
    register (the ones given, else every platform of the lock). No spec option goes with it."""
    given = [f"`{flag}`" for flag, value in (
        ("-f", args.files), ("-r", args.requirements), ("-p", args.packages),
        ("--pypi", args.pypi), ("--python", args.python), ("-c", args.channels),
        ("--exclude-newer", args.exclude_newer), ("--virtual-package", args.virtual_package),
        ("--lock", getattr(args, "lock", None)), ("--find-links", getattr(args, "find_links", [])),
    ) if value]  # fmt: skip
    if given:
        raise InvalidSpecError(
            f"`--from-lock` takes no spec options, but {', '.join(given)} was given",
            hint="the lock is the whole spec: give it alone",
        )
    explicit_platform = args.arch[0] if len(args.arch) == 1 else None
    environment = getattr(args, "lock_environment", None)
    lock = read_lock(args.from_lock, platform=explicit_platform, environment=environment)
    spec = normalize_spec(RawSpec(locked=list(lock.platforms)))
    platforms = [check_platform(p) for p in args.arch] or [lp.platform for lp in lock.platforms]
    pinned = {lp.platform for lp in lock.platforms}
    for platform in platforms:
        if platform not in pinned:
            raise InvalidLockError(
                f"platform `{platform}` is not in lock `{args.from_lock}`",
                hint="it pins: " + ", ".join(f"`{p}`" for p in sorted(pinned)),
            )
    return spec, platforms


def _checked(
    found: dict[str, list[LockedPackage]], path: Path, *, need_sha256: bool = False
) -> tuple[LockedPlatform, ...]:
    """Checked by `envd.locks.check_locked`; conda-lock and pixi record a sha256 for every
    package, so there an md5 alone is a broken entry (only `@EXPLICIT` files lack them)."""
    if not found:
        raise InvalidLockError(f"`{path}` pins no platform")
    for platform, items in found.items() if need_sha256 else ():
        for index, package in enumerate(items):
            if not package.sha256:
                raise InvalidLockError(
                    f"invalid lock entry `{package.name}` at `{path}` {platform}[{index}]: it "
                    "has no sha256; only an `@EXPLICIT` file may give an md5 alone",
                    hint="regenerate the lock file (e.g. `conda-lock lock`, `pixi lock`)",
                )
    return check_locked(
        (LockedPlatform(p, tuple(items)) for p, items in found.items()), f"`{path}`"
    )
