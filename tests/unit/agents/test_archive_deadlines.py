"""ArchiveCache's upload deadline and cancellation while an upload hangs."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envd.agents.archive_cache import ArchiveCache
from envd.agents.fetch import Fetcher
from envd.agents.transmute import Transmuter
from envd.description import ResolvedPackage
from envd.errors import StageTimeoutError
from envd.store.local import LocalStore

ROOT = Path(__file__).resolve().parents[3]
ARCHIVE = ROOT / "tests" / "fixtures" / "packages" / "conda-test-recipes" / "dependency-2.0-0.conda"
SHA256 = hashlib.sha256(ARCHIVE.read_bytes()).hexdigest()
KEY = f"pkgs/{SHA256}/{ARCHIVE.name}"


class HangingStore(LocalStore):
    """A stand-in for a store that stops answering mid-upload: a LocalStore cannot be made to
    hang by itself (and the cloud emulators cannot stall on cue), so `put_file_if_absent`
    blocks until the test releases it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.release = threading.Event()
        self.entered = threading.Event()

    def put_file_if_absent(self, key: str, path: Path) -> bool:
        self.entered.set()
        self.release.wait(30)
        return super().put_file_if_absent(key, path)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HangingStore]:
    hanging = HangingStore(tmp_path / "store")
    yield hanging
    hanging.release.set()


def package() -> ResolvedPackage:
    return ResolvedPackage(
        kind="conda", name="dependency", version="2.0", build="0", channel=ARCHIVE.parent.as_uri(),
        url=ARCHIVE.as_uri(), filename=ARCHIVE.name, sha256=SHA256, md5=None,
        size=ARCHIVE.stat().st_size, subdir="noarch",
    )  # fmt: skip


def cache_for(store: LocalStore, scratch: Path, upload_timeout: float) -> ArchiveCache:
    return ArchiveCache(store, Fetcher(), Transmuter(workers=0), scratch_dir=scratch,
                        upload_timeout=upload_timeout)  # fmt: skip


def test_an_upload_past_its_deadline_fails_naming_the_key_and_the_store(
    tmp_path: Path, store: HangingStore
) -> None:
    cache = cache_for(store, tmp_path / "scratch", upload_timeout=0.5)
    start = time.monotonic()
    try:
        with pytest.raises(StageTimeoutError) as info:
            asyncio.run(cache.cache([package()]))
    finally:
        cache.close()
    assert time.monotonic() - start < 3.0
    assert info.value.message == (
        f"timed out uploading `{KEY}` to store `{store.url}`: not done within 0.5 s"
    )
    assert info.value.hint is not None and "`--upload-timeout`" in info.value.hint
    assert list((tmp_path / "scratch").iterdir()) == []


def test_cancelled_while_an_upload_hangs_returns_at_once_without_temp_files(
    tmp_path: Path, store: HangingStore
) -> None:
    cache = cache_for(store, tmp_path / "scratch", upload_timeout=60.0)

    async def cancel_mid_upload() -> float:
        task = asyncio.create_task(cache.cache([package()]))
        while not store.entered.is_set():
            await asyncio.sleep(0.02)
        task.cancel()
        start = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - start

    try:
        assert (
            asyncio.run(cancel_mid_upload()) < 2.0
        )  # not the upload (30 s) or its deadline (60 s)
    finally:
        cache.close()
    assert list((tmp_path / "scratch").iterdir()) == []
