"""`create`: materialize an environment from the store alone (the channel may be gone).

It installs exactly the description or fails: each archive is checked by its sha256 and by
its own `info/index.json` before anything is linked, the prefix's `conda-meta` records after;
a failure names the package and removes what this call made.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rattler
from rattler.exceptions import (
    CacheDirError,
    ExtractError,
    InstallerError,
    IoError,
    LinkError,
    TransactionError,
)

from envd.errors import (
    ArchiveIntegrityError,
    EnvdError,
    EnvironmentNotFoundError,
    InstallError,
    InvalidSpecError,
    UnknownPlatformError,
)
from envd.platforms import host_platform_name
from envd.store.base import Store
from envd.store.layout import package_key

from .archive_contents import payload_problem, read_index
from .store_view import archive_url

Progress = Callable[[str], None]
_PREFERRED = (".conda", ".tar.bz2")
_INSTALLER_ERRORS = (
    InstallerError, LinkError, TransactionError, ExtractError, IoError, CacheDirError, OSError
)  # fmt: skip
# rattler's installer marks its prefix as a cache; an environment is not one.
_CACHE_TAG = "CACHEDIR.TAG"
_CONDA_META = "conda-meta"
_MAX_CAUSE = 300
_REBUILD_HINT = "the description names the wrong archive; resolve again with `--force`"


@dataclass(frozen=True, slots=True)
class CachedArchive:
    """One package's archive as fetched from the store and checked, ready to link."""

    name: str
    version: str
    build: str
    filename: str
    sha256: str
    path: Path
    url: str  # where the store keeps it: the conda-meta record names this
    store_url: str
    index_json: Path  # its own info/index.json, extracted


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
    """Download every package's archive from the store, verifying its sha256 and that its
    `info/index.json` is the package the description lists."""
    archives = []
    packages = [p for p in description["packages"] if p["kind"] == "conda"]  # not a mixed's wheels
    for index, package in enumerate(packages, 1):
        archives.append(_fetch(package, store, into))
        progress(f"fetched {index}/{len(packages)} {archives[-1].filename}")
    return archives


def _fetch(package: dict[str, Any], store: Store, into: Path) -> CachedArchive:
    chosen = pick_format(package)
    filename = chosen["filename"]
    dest, actual = download_package(store, chosen, into, "archives")
    if actual != chosen["sha256"]:
        dest.unlink()
        raise ArchiveIntegrityError(
            f"failed to verify `{filename}` from the store: sha256 is `{actual}`, the "
            f"description says `{chosen['sha256']}`",
            hint="the stored archive is corrupt; delete it and resolve again with `--force`",
        )
    index_json = into / f"{actual}.index.json"
    index_json.write_text(json.dumps(_check_index(package, filename, read_index(dest))))
    return CachedArchive(
        name=package["name"],
        version=package["version"],
        build=package["build"],
        filename=filename,
        sha256=actual,
        path=dest,
        url=archive_url(store, actual, filename),
        store_url=store.url,
        index_json=index_json,
    )


def install(archives: list[CachedArchive], prefix: Path, platform: str, cache_dir: Path) -> None:
    """Link the archives into `prefix` with py-rattler's installer (records from each archive's
    own info/index.json, so nothing depends on the channel), then check the `conda-meta`
    records against the archives; on any failure remove what this call made and raise."""
    existed = prefix.exists()
    before = set(prefix.iterdir()) if existed else set()
    try:
        prefix.mkdir(parents=True, exist_ok=True)
        asyncio.run(
            rattler.install(
                [_record(a) for a in archives],
                prefix,
                cache_dir=cache_dir,
                platform=rattler.Subdir(platform),
                show_progress=False,
            )
        )
        if prefix / _CACHE_TAG not in before:
            (prefix / _CACHE_TAG).unlink(missing_ok=True)
        _name_the_store(prefix, archives)
        _check_installed(prefix, archives)
    except _INSTALLER_ERRORS as err:
        undo_prefix(prefix, existed, before)
        raise _explain(err, archives, prefix, bool(before)) from err
    except BaseException as err:
        undo_prefix(prefix, existed, before)
        if isinstance(err, EnvdError) and before:
            err.hint = _kept_hint(prefix)
        raise


def _check_index(package: dict[str, Any], filename: str, index: dict[str, Any]) -> dict[str, Any]:
    """`index` if the archive is the package the description lists, else raise naming both."""
    fields = ("name", "version", "build", "subdir")
    wanted = tuple(str(package.get(f, "")) for f in fields)
    found = tuple(str(index.get(f, "")) for f in fields)
    if wanted != found:
        raise ArchiveIntegrityError(
            f"failed to verify `{filename}` from the store: the description lists it "
            f"for package `{_label(wanted)}`, its info/index.json says `{_label(found)}`",
            hint=_REBUILD_HINT,
        )
    return index


def _label(fields: tuple[str, ...]) -> str:
    name, version, build, subdir = fields
    return f"{name} {version} {build} ({subdir})"


def _record(archive: CachedArchive) -> rattler.RepoDataRecord:
    record = rattler.PackageRecord.from_index_json(
        archive.index_json, size=archive.path.stat().st_size, sha256=archive.sha256
    )
    local = archive.path.resolve()  # linked from here; the records name the store instead
    return rattler.RepoDataRecord(record, archive.filename, local.as_uri(), local.parent.as_uri())


def _name_the_store(prefix: Path, archives: list[CachedArchive]) -> None:
    """Point each new `conda-meta` record at the archive's URL in the store: the temp folder
    the installer read it from is gone once `create` returns."""
    by_file = {a.filename: a for a in archives}
    for path, record in _records(prefix):
        archive = by_file.get(record.get("fn", ""))
        if archive is None or record.get("sha256") != archive.sha256:
            continue  # not one this call installed: `_check_installed` decides
        record["url"] = archive.url
        record["channel"] = archive.store_url
        path.write_text(json.dumps(record, indent=2) + "\n", "utf-8")


def _check_installed(prefix: Path, archives: list[CachedArchive]) -> None:
    """Every archive has its record (name, version, build, sha256, store URL) and there is no
    other (the installer's transaction removes what a `--force` prefix held before)."""
    records = {str(record.get("name")): record for _, record in _records(prefix)}
    for archive in archives:
        record = records.pop(archive.name, None)
        want = (archive.version, archive.build, archive.sha256, archive.url)
        got = None if record is None else tuple(record.get(k) for k in _RECORD_FIELDS)
        if got != want:
            what = "no record" if got is None else f"record `{got[0]} {got[1]}` ({got[2]})"
            raise InstallError(
                f"failed to create environment in `{prefix}`: package `{archive.name} "
                f"{archive.version} {archive.build}` has {what} in `{_CONDA_META}`",
                hint="the installer did not install what the description lists",
            )
    if records:
        raise InstallError(
            f"failed to create environment in `{prefix}`: `{_CONDA_META}` has "
            f"`{', '.join(sorted(records))}`, which the description does not list",
            hint="the installer did not install what the description lists",
        )


_RECORD_FIELDS = ("version", "build", "sha256", "url")


def _records(prefix: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The installed `conda-meta` records, each with its file."""
    found = []
    for path in sorted((prefix / _CONDA_META).glob("*.json")):
        try:
            record = json.loads(path.read_text("utf-8"))
        except ValueError as err:
            raise InstallError(
                f"failed to create environment in `{prefix}`: `{_CONDA_META}/{path.name}` is "
                f"not valid JSON: {err}",
                hint="the installer wrote a broken record; retry, or report it",
            ) from err
        found.append((path, record if isinstance(record, dict) else {}))
    return found


def _explain(err: Exception, archives: list[CachedArchive], prefix: Path, kept: bool) -> EnvdError:
    """A failed install in words: the package and the file at fault when the archive's files
    do not match its info/paths.json, else the installer's own reason, cleaned."""
    cause = _clean(str(err))
    hint = _kept_hint(prefix) if kept else None
    if isinstance(err, OSError):  # this machine's file system, not a package
        return InstallError(f"failed to create environment in `{prefix}`: {cause}", hint=hint)
    for archive in [a for a in archives if a.filename in cause] or archives:
        problem = payload_problem(archive.path)
        if problem is not None:
            return ArchiveIntegrityError(
                f"failed to install package `{archive.name} {archive.version} {archive.build}` "
                f"from `{archive.filename}`: {problem}",
                hint=hint
                or "the package is broken as published: its files do not match its "
                "info/paths.json; pin another build of it",
            )
    return InstallError(f"failed to create environment in `{prefix}`: {cause}", hint=hint)


def _clean(text: str) -> str:
    """The installer's message on one line: no control bytes, its causes joined by `: `."""
    lines = [re.sub(r"[\x00-\x1f\x7f]+", " ", line).strip() for line in text.splitlines()]
    joined = ": ".join(line.removeprefix("Caused by: ") for line in lines if line)
    joined = re.sub(r" {2,}", " ", joined)
    return joined if len(joined) <= _MAX_CAUSE else joined[: _MAX_CAUSE - 1] + "…"


def undo_prefix(prefix: Path, existed: bool, before: set[Path]) -> None:
    """Remove what this call made: the prefix it created, or everything in one that was
    empty. A prefix that held files before (`--force`) is left as it is."""
    if not existed:
        shutil.rmtree(prefix, ignore_errors=True)
    elif not before:
        for entry in list(prefix.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _kept_hint(prefix: Path) -> str:
    return (
        f"`{prefix}` held files before (`--force`), so it was left as it is and may hold part "
        "of the environment; create into an empty directory instead"
    )


def download_package(
    store: Store, chosen: dict[str, Any], into: Path, noun: str
) -> tuple[Path, str]:
    """Download the package format `chosen` from the store into `into`: its path and the
    sha256 of the bytes received (the caller checks it); missing → EnvironmentNotFoundError."""
    filename = chosen["filename"]
    dest = into / filename
    if not store.download(package_key(chosen["sha256"], filename), dest):
        raise EnvironmentNotFoundError(
            f"failed to create environment: `{filename}` is missing from store `{store.url}`",
            hint=f"resolve again with `--force` to cache the {noun} again",
        )
    return dest, _sha256(dest)


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
