"""Garbage collection over a real LocalStore: what nothing references goes once it is older than
the grace period; what a description names, anything young, and everything under --dry-run stays."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from stored_env import archived_package, store_environment

from envd.catalog import Catalog
from envd.garbage import collect_garbage
from envd.store.layout import link_key, package_key
from envd.store.local import LocalStore

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "packages"
ZLIB = FIXTURES / "conda-format-repo-linux-64" / "zlib-1.2.11-h7b6447c_3.conda"
ZLIB_BZ2 = FIXTURES / "conda-format-repo-linux-64" / "zlib-1.2.11-h7b6447c_3.tar.bz2"
MOCK = FIXTURES / "conda-package-handling" / "mock-2.0.0-py37_1000.conda"
DAY = 86400.0


def key_of(path: Path) -> str:
    return package_key(hashlib.sha256(path.read_bytes()).hexdigest(), path.name)


def age(store: LocalStore, key: str, seconds: float) -> None:
    path = store.root / key
    past = time.time() - seconds
    os.utime(path, (past, past))


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    store_environment(store, [archived_package(ZLIB)], [ZLIB], "linux-64")
    for orphan in (ZLIB_BZ2, MOCK):  # e.g. an environment deleted, a transmute race lost
        store.put_file_if_absent(key_of(orphan), orphan)
    return store


def test_unreferenced_old_archives_go_referenced_and_young_ones_stay(store: LocalStore) -> None:
    age(store, key_of(ZLIB_BZ2), 2 * DAY)
    age(store, key_of(ZLIB), 2 * DAY)  # old, but its description names it
    report = collect_garbage(store, now=time.time(), grace=DAY, dry_run=False)
    assert report.removed == (key_of(ZLIB_BZ2),)
    assert report.removed_bytes == ZLIB_BZ2.stat().st_size
    assert report.kept_young == 1  # MOCK: unreferenced, written just now
    assert store.stat(key_of(ZLIB_BZ2)) is None
    assert store.stat(key_of(ZLIB)) is not None and store.stat(key_of(MOCK)) is not None


def test_dry_run_removes_nothing(store: LocalStore) -> None:
    age(store, key_of(ZLIB_BZ2), 2 * DAY)
    before = sorted(p for p in store.root.rglob("*"))
    report = collect_garbage(store, now=time.time(), grace=DAY, dry_run=True)
    assert report.removed == (key_of(ZLIB_BZ2),)
    assert sorted(p for p in store.root.rglob("*")) == before


def test_links_to_removed_conda_and_a_killed_writers_temp_files_go(store: LocalStore) -> None:
    mock_sha = hashlib.sha256(MOCK.read_bytes()).hexdigest()
    link = {"schema": "envd-link-v1", "source_sha256": "0" * 64, "source_filename": "m.tar.bz2",
            "sha256": mock_sha, "filename": MOCK.name, "size": MOCK.stat().st_size}  # fmt: skip
    store.put_if_absent(link_key("0" * 64), json.dumps(link).encode())
    temp = store.root / "pkgs" / f".{MOCK.name}.0123abcd.tmp"
    temp.write_bytes(b"half an upload")
    fresh_temp = store.root / "pkgs" / f".{MOCK.name}.4567cdef.tmp"
    fresh_temp.write_bytes(b"an upload in flight")
    for key in (key_of(MOCK), link_key("0" * 64), temp.relative_to(store.root).as_posix()):
        age(store, key, 2 * DAY)
    report = collect_garbage(store, now=time.time(), grace=DAY, dry_run=False)
    assert set(report.removed) == {
        key_of(MOCK),
        link_key("0" * 64),
        temp.relative_to(store.root).as_posix(),
    }
    assert not temp.exists() and fresh_temp.exists()
    assert store.get(link_key("0" * 64)) is None


def test_a_description_written_meanwhile_keeps_what_it_reuses(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    age(store, key_of(MOCK), 2 * DAY)
    listing = store.list
    calls = []

    def list_then_resolve(prefix: str) -> list[str]:
        calls.append(prefix)
        if prefix == "envs/" and calls.count("envs/") == 2:  # the re-read before removing
            store_environment(store, [archived_package(MOCK)], [MOCK], "linux-64")
        return listing(prefix)

    monkeypatch.setattr(store, "list", list_then_resolve)
    report = collect_garbage(store, now=time.time(), grace=DAY, dry_run=False)
    assert report.removed == ()
    assert store.stat(key_of(MOCK)) is not None
    assert len(Catalog(store).list_environments()) == 2


def test_an_unparseable_description_is_reported(store: LocalStore) -> None:
    store.put_if_absent(f"envs/{'a' * 40}/linux-64/{'b' * 40}.json", b"{truncated")
    report = collect_garbage(store, now=time.time(), grace=DAY, dry_run=True)
    assert report.unreadable == (f"envs/{'a' * 40}/linux-64/{'b' * 40}.json",)
