"""Caches the archives of a resolution in the store: fetch, verify, upload, transmute, link.

Per conda package (and per PyPI wheel, which is never transmuted): an archive already under `pkgs/<sha256>/<filename>` is not fetched again;
otherwise it is streamed from its channel to a temp file, checked against the repodata's sha256
(or md5), and uploaded create-only. A `.tar.bz2` also gets a `.conda`: reused when
`links/<sha256>.json` names one in the store, else transmuted on a worker process, verified,
uploaded and linked (those records: `archive_links`). Packages run on a bounded thread pool, so
memory stays at a few chunks per archive in flight and the disk holds at most `concurrency`
packages' temp files at once.

Sources: before anything is fetched, every archive URL must stay in the channel it came from
(`check_sources`): a repodata `base_url` can't send a download to another host or to local
files, so no file outside a channel is ever read, hashed or named in an error.

Deadlines: each download waits at most the fetcher's timeout for bytes; each upload may take
`upload_timeout` (it runs on a pool of its own, so the package's thread can stop waiting).
Cancellation (the first failure, or the job's task cancelled): nothing more starts, downloads
stop within one read, uploads are no longer waited for, and `cache` returns only once every
package's thread has ended and the job's temp folder is gone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import hashlib
import logging
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from envd.channel_policy import check_archive_url
from envd.description import PackageFormat, ResolvedPackage
from envd.errors import (
    ArchiveIntegrityError,
    ChannelNotAllowedError,
    StageTimeoutError,
    StoreError,
)
from envd.store.base import Store
from envd.store.layout import link_key, package_key

from .archive_links import Link, linked_format, live_link, publish_link
from .fetch import FetchCancelled, Fetcher, redact_url
from .transmute import Transmuter, conda_name

log = logging.getLogger("envd.agent")
DEFAULT_CONCURRENCY = 8
DEFAULT_UPLOAD_TIMEOUT = 600.0  # one archive; a 1 GB package at under 2 MB/s still makes it
_POLL = 0.1  # how often a thread waiting on an upload looks at the cancel flag
_SHA256_HEX = 64
_CACHED_KINDS = ("conda", "pypi")
ProgressCallback = Callable[["CacheProgress"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CacheProgress:
    done: int
    total: int
    transmuted: int  # packages whose `.conda` this job made from a `.tar.bz2`

    def message(self) -> str:
        return f"cached {self.done}/{self.total} archives ({self.transmuted} transmuted)"


@dataclass(frozen=True, slots=True)
class CacheReport:
    """The packages with their cached `formats`, and what this call added to the store."""

    packages: tuple[ResolvedPackage, ...]
    uploaded: int  # objects created under `pkgs/` by this call
    transmuted: int
    reused: int  # archives (originals or linked `.conda`s) already in the store


@dataclass(frozen=True, slots=True)
class _Cached:
    package: ResolvedPackage
    uploaded: int = 0
    transmuted: bool = False
    reused: int = 0


class ArchiveCache:
    """Puts every archive of a resolution into `store`; one per agent, shared by its jobs."""

    def __init__(
        self,
        store: Store,
        fetcher: Fetcher,
        transmuter: Transmuter,
        *,
        scratch_dir: Path,
        concurrency: int = DEFAULT_CONCURRENCY,
        upload_timeout: float = DEFAULT_UPLOAD_TIMEOUT,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.transmuter = transmuter
        self.scratch_dir = scratch_dir
        self.upload_timeout = upload_timeout
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max(1, concurrency), thread_name_prefix="envd-archive"
        )
        self._uploads = concurrent.futures.ThreadPoolExecutor(
            max(1, concurrency), thread_name_prefix="envd-upload"
        )

    async def cache(
        self, packages: Sequence[ResolvedPackage], progress: ProgressCallback | None = None
    ) -> CacheReport:
        """Cache every package's archives (conda archives, PyPI wheels); the first failure (or the task's cancellation)
        stops the rest and is raised once every archive in flight has stopped and the temp files
        are removed. An archive URL outside its channel fails it before anything starts."""
        check_sources(packages)
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="job-", dir=self.scratch_dir))
        cancel = threading.Event()
        fork = contextvars.copy_context  # a copy per package: its thread's log lines name the job
        futures = [
            self._pool.submit(fork().run, self._cache_one, p, work / str(i), cancel)
            for i, p in enumerate(packages)
        ]
        total = sum(p.kind in _CACHED_KINDS for p in packages)
        try:
            results = await self._gather(futures, total, progress)
        finally:
            cancel.set()
            for future in futures:
                future.cancel()  # those not started yet
            # shielded: cancelled again while waiting, the cleanup still ends on its thread
            await asyncio.shield(asyncio.to_thread(_settle, futures, work))
        return CacheReport(
            packages=tuple(r.package for r in results),
            uploaded=sum(r.uploaded for r in results),
            transmuted=sum(r.transmuted for r in results),
            reused=sum(r.reused for r in results),
        )

    async def _gather(
        self,
        futures: list[concurrent.futures.Future[_Cached]],
        total: int,
        progress: ProgressCallback | None,
    ) -> list[_Cached]:
        """Results in the order of `futures`; reports progress about 20 times in all."""
        wrapped = [asyncio.wrap_future(f) for f in futures]
        step = max(1, total // 20)
        done = transmuted = 0
        pending: set[asyncio.Future[_Cached]] = set(wrapped)
        try:
            while pending:
                finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                failures = [e for e in (f.exception() for f in finished) if e is not None]
                if failures:
                    raise failures[0]  # the first failure; the others are its consequences
                for future in finished:
                    result = future.result()
                    transmuted += result.transmuted
                    if result.package.kind in _CACHED_KINDS:
                        done += 1
                        if progress is not None and (done % step == 0 or done == total):
                            await progress(CacheProgress(done, total, transmuted))
        finally:
            for future in pending:
                future.cancel()  # also cancels its work item if it has not started
        return [f.result() for f in wrapped]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._uploads.shutdown(wait=False, cancel_futures=True)  # a stuck upload is not waited for

    def _cache_one(self, package: ResolvedPackage, work: Path, cancel: threading.Event) -> _Cached:
        if package.kind not in _CACHED_KINDS:
            return _Cached(package)
        work.mkdir(parents=True)
        try:
            return self._cache_archive(package, work, cancel)
        finally:
            shutil.rmtree(work, ignore_errors=True)  # free the disk as soon as possible

    def _cache_archive(
        self, package: ResolvedPackage, work: Path, cancel: threading.Event
    ) -> _Cached:
        local: Path | None = None
        sha256 = package.sha256
        info = self.store.stat(package_key(sha256, package.filename)) if sha256 else None
        uploaded = reused = 0
        if info is None:
            local, sha256 = self._fetch_verified(package, work, cancel)
            uploaded += self._upload(package_key(sha256, package.filename), local, cancel)
            size = local.stat().st_size
        else:
            size, reused = info.size, 1
        formats = [PackageFormat(_format_of(package.filename), package.filename, sha256, size)]
        made = False
        if package.filename.endswith(".tar.bz2"):
            _check_cancel(cancel)
            conda, made, up, again = self._conda_of(package, sha256, local, work, cancel)
            formats.append(conda)
            uploaded, reused = uploaded + up, reused + again
        # sha256: an archive checked by md5 alone (an `@EXPLICIT` lock entry) is described by
        # the sha256 of the bytes that passed
        described = replace(package, sha256=sha256, formats=tuple(formats))
        return _Cached(described, uploaded, made, reused)

    def _fetch_verified(
        self, package: ResolvedPackage, work: Path, cancel: threading.Event
    ) -> tuple[Path, str]:
        """Download the archive from its channel; return it and its sha256 once it matches."""
        dest = work / package.filename
        fetched = self.fetcher.fetch(package.url, dest, max_size=package.size, cancel=cancel)
        where = f"archive of `{package.name}` (`{redact_url(package.url)}`)"
        source = "the index" if package.kind == "pypi" else "the channel's repodata"
        expected, actual, kind = package.sha256, fetched.sha256, "sha256"
        if not expected:
            expected, actual, kind = package.md5 or "", fetched.md5, "md5"
        problem = None
        if package.size is not None and fetched.size > package.size:
            problem = f"it is over the {package.size} bytes {source} records"
            problem += f" (expected {kind} `{expected}`)"
        elif not expected:
            problem = f"{source} records no sha256 or md5 to check it against"
        elif actual != expected:
            problem = f"{kind} is `{actual}`, {source} says `{expected}`"
        if problem is not None:
            dest.unlink(missing_ok=True)
            raise ArchiveIntegrityError(
                f"failed to verify {where}: {problem}",
                hint="the download was truncated or tampered with and nothing of it was stored;"
                " retry, and if it persists tell the channel's maintainers",
            )
        log.info("fetched %s (%d bytes)", package.filename, fetched.size)
        return dest, fetched.sha256

    def _conda_of(
        self,
        package: ResolvedPackage,
        sha256: str,
        local: Path | None,
        work: Path,
        cancel: threading.Event,
    ) -> tuple[PackageFormat, bool, int, int]:
        """The `.conda` of a `.tar.bz2`: (format, made now, uploads, reused)."""
        key = link_key(sha256)
        held = live_link(self.store, key, sha256)
        if held is not None:
            return linked_format(held), False, 0, 1
        if local is None:  # the original is in the store but was never linked
            local = self._from_store(package, sha256, work)
        out = work / "conda"
        out.mkdir()
        made = self.transmuter.transmute(local, out)
        _check_cancel(cancel)
        filename = conda_name(package.filename)
        uploads = self._upload(package_key(made.sha256, filename), made.path, cancel)
        link = Link(sha256, package.filename, made.sha256, filename, made.size)
        winner = publish_link(self.store, key, link)
        log.info("transmuted %s → %s (%d files verified)", package.filename, filename, made.files)
        return linked_format(winner), winner == link, uploads, int(winner != link)

    def _from_store(self, package: ResolvedPackage, sha256: str, work: Path) -> Path:
        dest = work / package.filename
        key = package_key(sha256, package.filename)
        if not self.store.download(key, dest):
            raise StoreError(f"failed to read `{key}` from store `{self.store.url}`: it vanished")
        with dest.open("rb") as f:
            actual = hashlib.file_digest(f, "sha256").hexdigest()
        if actual != sha256:
            raise ArchiveIntegrityError(
                f"failed to verify archive of `{package.name}` in store `{self.store.url}`: "
                f"sha256 of `{key}` is `{actual}`",
                hint="the stored archive is corrupt; delete it and resolve again with `--force`",
            )
        return dest

    def _upload(self, key: str, path: Path, cancel: threading.Event) -> int:
        """Upload create-only within `upload_timeout`. Store SDKs cannot be interrupted: an
        upload given up on (timed out, or the job cancelled) ends on its own thread; it is
        create-only and content-addressed, so finishing late harms nothing."""
        upload = self._uploads.submit(self.store.put_file_if_absent, key, path)
        waited = 0.0
        while not upload.done():
            if cancel.is_set():
                raise FetchCancelled(f"upload of `{key}`")
            if waited >= self.upload_timeout:
                raise StageTimeoutError(
                    f"timed out uploading `{key}` to store `{self.store.url}`: not done within "
                    f"{self.upload_timeout:g} s",
                    hint="check that the store is reachable; for very large archives on a slow "
                    "link, raise the agent's `--upload-timeout`",
                )
            concurrent.futures.wait([upload], timeout=_POLL)
            waited += _POLL
        created = upload.result()
        if created:
            log.info("uploaded %s (%d bytes)", key, path.stat().st_size)
        return int(created)


def check_sources(packages: Sequence[ResolvedPackage]) -> None:
    """Refuse (`ChannelNotAllowedError`) a conda package whose archive URL leaves the channel
    it was resolved from: another scheme, host or port, or a local file outside the channel's
    folder. Only the channel and the package are named, never the URL's target."""
    for package in packages:
        if package.kind != "conda":
            continue
        try:
            check_archive_url(package.channel, package.url)
        except ChannelNotAllowedError as err:
            raise ChannelNotAllowedError(
                f"{err.message} (package `{package.name}` {package.version}): nothing was fetched",
                hint=err.hint,
            ) from err


def _format_of(filename: str) -> str:
    return ".tar.bz2" if filename.endswith(".tar.bz2") else "." + filename.rpartition(".")[2]


def _settle(futures: list[concurrent.futures.Future[_Cached]], work: Path) -> None:
    """Wait until no package's thread runs (each removes its own temp files), then remove the
    job's temp folder."""
    concurrent.futures.wait(futures)
    shutil.rmtree(work, ignore_errors=True)


def _check_cancel(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise FetchCancelled("another archive of the job failed")
