"""`create`: materialize an environment from the store alone (the channel may be gone)."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rattler
from conda_package_streaming.package_streaming import stream_conda_component

from envd.errors import (
    ArchiveIntegrityError,
    EnvironmentNotFoundError,
    InvalidSpecError,
    UnknownPlatformError,
)
from envd.platforms import host_platform_name
from envd.store.base import Store
from envd.store.layout import package_key

Progress = Callable[[str], None]
_PREFERRED = (".conda", ".tar.bz2")


@dataclass(frozen=True, slots=True)
class CachedArchive:
    """One package's archive as fetched from the store for installation."""

    name: str
    filename: str
    sha256: str
    path: Path


def check_target(description: dict[str, Any], prefix: Path, *, force: bool) -> None:
    """Refuse what cannot work before fetching anything."""
    platform = description["platform"]
    host = host_platform_name()
    if platform != host:
        raise UnknownPlatformError(
            f"failed to create environment `{description['full_id']}`: it is for `{platform}` "
            f"and this machine is `{host}`",
            hint=f"run `create` on a `{platform}` machine, or resolve for `{host}`",
        )
    if prefix.exists() and (not prefix.is_dir() or any(prefix.iterdir())) and not force:
        raise InvalidSpecError(
            f"failed to create environment in `{prefix}`: the prefix is not empty",
            hint="choose an empty or new directory, or pass `--force` to install into it",
        )


def pick_format(package: dict[str, Any]) -> dict[str, Any]:
    """The cached format to install: `.conda` when the store has one, else the original."""
    formats: dict[str, dict[str, Any]] = {f["format"]: f for f in package.get("formats", [])}
    for kind in _PREFERRED:
        if kind in formats:
            return formats[kind]
    raise EnvironmentNotFoundError(
        f"failed to create environment: package `{package['filename']}` has no archive in "
        "the store (it was resolved with `--no-archives`)",
        hint="resolve it again without `--no-archives` and with `--force`",
    )


def fetch_archives(
    description: dict[str, Any], store: Store, into: Path, progress: Progress
) -> list[CachedArchive]:
    """Download every package's archive from the store, verifying each sha256."""
    archives = []
    packages = description["packages"]
    for index, package in enumerate(packages, 1):
        chosen = pick_format(package)
        dest = into / chosen["filename"]
        if not store.download(package_key(chosen["sha256"], chosen["filename"]), dest):
            raise EnvironmentNotFoundError(
                f"failed to create environment: `{chosen['filename']}` is missing from store "
                f"`{store.url}`",
                hint="resolve again with `--force` to cache the archives again",
            )
        actual = _sha256(dest)
        if actual != chosen["sha256"]:
            dest.unlink()
            raise ArchiveIntegrityError(
                f"failed to verify `{chosen['filename']}` from the store: sha256 is `{actual}`,"
                f" the description says `{chosen['sha256']}`",
                hint="the stored archive is corrupt; delete it and resolve again with `--force`",
            )
        progress(f"fetched {index}/{len(packages)} {chosen['filename']}")
        archives.append(CachedArchive(package["name"], chosen["filename"], actual, dest))
    return archives


def install(archives: list[CachedArchive], prefix: Path, platform: str, cache_dir: Path) -> None:
    """Link the archives into `prefix` with py-rattler's installer (records from each archive's
    own info/index.json, so nothing depends on the channel)."""
    with tempfile.TemporaryDirectory(prefix="envd-index-") as scratch:
        records = [_record(a, Path(scratch)) for a in archives]
    prefix.mkdir(parents=True, exist_ok=True)
    asyncio.run(
        rattler.install(
            records,
            prefix,
            cache_dir=cache_dir,
            platform=rattler.Subdir(platform),
            show_progress=False,
        )
    )


def _record(archive: CachedArchive, scratch: Path) -> rattler.RepoDataRecord:
    index_json = scratch / f"{archive.sha256}.json"
    with archive.path.open("rb") as f:
        for tar, member in stream_conda_component(archive.filename, f, component="info"):
            if member.name == "info/index.json":
                extracted = tar.extractfile(member)
                assert extracted is not None
                index_json.write_bytes(extracted.read())
                break
    record = rattler.PackageRecord.from_index_json(
        index_json, size=archive.path.stat().st_size, sha256=archive.sha256
    )
    url = archive.path.resolve().as_uri()
    return rattler.RepoDataRecord(
        record, archive.filename, url, archive.path.parent.resolve().as_uri()
    )


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
