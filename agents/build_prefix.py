"""The environment's own python for native builds of a mixed spec: its conda solution installed
with py-rattler's installer into a prefix under the agent's cache dir, whose `bin/python` runs
`uv build`. Prefixes are kept per conda set (`prefix_key`), the `keep` most recently used."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import rattler
from conda_package_streaming.package_streaming import stream_conda_info

from envd.description import ResolvedPackage
from envd.errors import ArchiveIntegrityError, EnvdError, StageTimeoutError, WheelBuildError
from envd.store.base import Store
from envd.store.layout import package_key

from .archive_cache import check_sources
from .fetch import Fetcher, redact_url

log = logging.getLogger("envd.agent")
DEFAULT_KEEP = 2  # prefixes kept between jobs (a python environment is ~100-300 MB)
MARK = ".envd-build-prefix.json"  # written last: a prefix without it is incomplete
TRASH = "trash-"  # an evicted prefix, renamed before it is deleted off the event loop
_INDEX_FIELDS = ("name", "version", "build")


def prefix_key(conda: Iterable[ResolvedPackage]) -> str:
    """The conda set's identity: sha256 over each conda record's subdir, filename and sha256
    (sorted), so the same solution reuses one prefix and any other archive makes another."""
    lines = sorted(f"{p.subdir}/{p.filename} {p.sha256}" for p in conda if p.kind == "conda")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:32]


def python_path(prefix: Path, platform: str) -> Path:
    return prefix / "python.exe" if platform.startswith("win-") else prefix / "bin" / "python"


class BuildPrefixes:
    """Installs a mixed spec's conda solution for its builds, under `cache_dir/build-prefixes/
    <prefix_key>`. Archives come from the store (`pkgs/<sha256>/<filename>`) when cached there,
    else from their channel with the agent's fetcher (the URL must stay in its channel); each
    is checked against the record's sha256 and its own `info/index.json`. A prefix in use is
    never removed; after each use, all but the `keep` most recently used are."""

    def __init__(
        self, store: Store, fetcher: Fetcher, cache_dir: Path, *, keep: int = DEFAULT_KEEP
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.root = cache_dir / "build-prefixes"
        self.keep = max(0, keep)
        self.installed = 0  # prefixes this object installed (a reuse is not an install)
        self._locks: dict[str, asyncio.Lock] = {}
        self._in_use: Counter[str] = Counter()

    @asynccontextmanager
    async def python(
        self, conda: Sequence[ResolvedPackage], platform: str, what: str
    ) -> AsyncIterator[Path]:
        """The interpreter of `conda` installed for `platform`, kept while the block runs."""
        key = prefix_key(conda)
        prefix = self.root / key
        self._in_use[key] += 1
        try:
            async with self._locks.setdefault(key, asyncio.Lock()):
                if (prefix / MARK).is_file():
                    (prefix / MARK).touch()  # most recently used
                else:
                    await asyncio.to_thread(self._install, conda, platform, prefix, what)
                    self.installed += 1
            interpreter = python_path(prefix, platform)
            if not interpreter.is_file():
                raise _no_python(conda, platform, what, f"the prefix has no `{interpreter.name}`")
            yield interpreter
        finally:
            self._in_use[key] -= 1
            await asyncio.to_thread(_remove, self._retire())

    def _install(
        self, conda: Sequence[ResolvedPackage], platform: str, prefix: Path, what: str
    ) -> None:
        packages = [p for p in conda if p.kind == "conda"]
        if not any(p.name == "python" for p in packages):
            raise _no_python(conda, platform, what, "the conda solution has no `python`")
        shutil.rmtree(prefix, ignore_errors=True)  # an install cut short earlier
        self.root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="install-", dir=self.root))
        try:
            check_sources(packages)
            records = [self._archive(p, work) for p in packages]
            log.info("installing %d conda packages into build prefix %s", len(records), prefix)
            asyncio.run(
                rattler.install(records, prefix, cache_dir=work / "rattler",
                                platform=rattler.Subdir(platform), show_progress=False)
            )  # fmt: skip
            mark = {"packages": sorted(f"{p.subdir}/{p.filename}" for p in packages)}
            (prefix / MARK).write_text(json.dumps(mark) + "\n", "utf-8")
        except StageTimeoutError:
            shutil.rmtree(prefix, ignore_errors=True)
            raise
        except EnvdError as err:
            shutil.rmtree(prefix, ignore_errors=True)
            raise _no_python(conda, platform, what, err.message) from err
        except Exception as err:  # py-rattler's installer errors have no common base
            shutil.rmtree(prefix, ignore_errors=True)
            raise _no_python(conda, platform, what, f"py-rattler's installer: {err}") from err
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _archive(self, package: ResolvedPackage, work: Path) -> rattler.RepoDataRecord:
        """The package's archive in `work`, verified, as the installer's record."""
        dest = work / package.filename
        shown = f"`{package.filename}`"
        if self.store.download(package_key(package.sha256, package.filename), dest):
            where = "the store"
            with dest.open("rb") as f:
                sha256 = hashlib.file_digest(f, "sha256").hexdigest()
        else:
            where = f"`{redact_url(package.url)}`"
            # the fetcher hashes as it streams: no second read of the archive
            sha256 = self.fetcher.fetch(package.url, dest, max_size=package.size).sha256
        if sha256 != package.sha256:
            raise ArchiveIntegrityError(
                f"{shown} from {where} has sha256 `{sha256}`, the repodata says `{package.sha256}`"
            )
        index = _index_json(dest)
        found = tuple(str(index.get(f, "")) for f in _INDEX_FIELDS)
        if found != (package.name, package.version, package.build):
            raise ArchiveIntegrityError(
                f"{shown} says it is `{' '.join(found)}` in its info/index.json, the solution "
                f"lists `{package.name} {package.version} {package.build}`"
            )
        index_path = work / f"{sha256}.index.json"
        index_path.write_text(json.dumps(index), "utf-8")
        record = rattler.PackageRecord.from_index_json(
            index_path, size=dest.stat().st_size, sha256=sha256
        )
        local = dest.resolve()
        return rattler.RepoDataRecord(
            record, package.filename, local.as_uri(), local.parent.as_uri()
        )

    def _retire(self) -> list[Path]:
        """Set aside all but the `keep` most recently used complete prefixes, and incomplete
        ones, that no build is using: each is renamed to `trash-…` here, on the event loop
        (so a build that starts next installs afresh, never into a prefix being deleted), and
        the returned folders are deleted off the loop."""
        if not self.root.is_dir():
            return []
        trash: list[Path] = []
        kept: list[tuple[float, Path]] = []
        for folder in self.root.iterdir():
            if not folder.is_dir() or folder.name.startswith("install-"):
                continue
            if folder.name.startswith(TRASH):  # left by a process that stopped mid-delete
                trash.append(folder)
            elif self._in_use[folder.name] > 0:
                continue
            elif (folder / MARK).is_file():
                kept.append(((folder / MARK).stat().st_mtime, folder))
            else:
                trash.extend(_set_aside(folder))
        kept.sort(reverse=True)
        in_use = sum(1 for n in self._in_use.values() if n > 0)
        for _, folder in kept[max(0, self.keep - in_use) :]:
            trash.extend(_set_aside(folder))
            self._locks.pop(folder.name, None)
        return trash


def _set_aside(folder: Path) -> list[Path]:
    aside = folder.with_name(f"{TRASH}{folder.name}-{uuid.uuid4().hex[:8]}")
    try:
        folder.rename(aside)
    except OSError as err:  # left in place: the next eviction tries again
        log.warning("could not set build prefix %s aside for deletion: %s", folder, err)
        return []
    return [aside]


def _remove(folders: Iterable[Path]) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def _index_json(archive: Path) -> dict[str, object]:
    try:
        for tar, member in stream_conda_info(str(archive)):
            if member.name == "info/index.json":
                extracted = tar.extractfile(member)
                index = json.load(extracted) if extracted is not None else None
                if isinstance(index, dict):
                    return index
                break
    except Exception as err:  # a damaged archive: tarfile, zipfile, zstd, json errors
        raise ArchiveIntegrityError(
            f"`{archive.name}` is not a readable conda archive: {err}"
        ) from err
    raise ArchiveIntegrityError(f"`{archive.name}` has no valid info/index.json")


def _no_python(
    conda: Sequence[ResolvedPackage], platform: str, what: str, cause: str
) -> WheelBuildError:
    python = next((p for p in conda if p.kind == "conda" and p.name == "python"), None)
    named = f"`python {python.version} {python.build}`" if python else "`python`"
    return WheelBuildError(
        f"failed to build {what} for `{platform}`: the environment's python ({named}, from its "
        f"conda packages) could not be installed to build with: {cause}",
        hint="a mixed spec's wheels are built with its own conda python, never a host one: "
        "check that the channel serves the solution's archives (or that they are cached in "
        "the store)",
    )
