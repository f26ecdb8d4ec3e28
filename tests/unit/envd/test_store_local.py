"""LocalStore runs the shared store conformance suite, plus what only a directory can show."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from envd.errors import StoreError
from envd.store.base import Store
from envd.store.local import LocalStore
from envd.store.url import open_store

# The suite lives beside the test folders; spawned racers inherit this sys.path entry.
_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from store_conformance import StoreConformance  # noqa: E402


class TestLocalStoreConformance(StoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        return LocalStore(tmp_path / "store")


def _all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_url_is_a_file_url_of_the_absolute_root(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "my store")
    assert store.url == (tmp_path / "my store").as_uri()
    assert store.url.startswith("file:///")
    reopened = open_store(store.url)
    assert isinstance(reopened, LocalStore)
    assert reopened.root == tmp_path / "my store"


def test_objects_are_plain_files_under_their_key(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_if_absent("pkgs/ab/x-1.0-0.conda", b"archive")
    assert (tmp_path / "pkgs" / "ab" / "x-1.0-0.conda").read_bytes() == b"archive"


def test_no_temp_files_remain_and_only_lock_files_sit_beside_keys(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_if_absent("pkgs/ab/x.conda", b"a")
    store.put_if_absent("pkgs/ab/x.conda", b"b")
    version = store.compare_and_swap("defaults/r/linux-64.json", None, b"1")
    store.compare_and_swap("defaults/r/linux-64.json", version, b"2")
    with pytest.raises(StoreError):
        store.compare_and_swap("defaults/r/linux-64.json", version, b"3")
    assert _all_files(tmp_path) == [
        "defaults/r/.linux-64.json.lock",
        "defaults/r/linux-64.json",
        "pkgs/ab/x.conda",
    ]


def test_a_crashed_writer_leaves_nothing_visible(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    folder = tmp_path / "envs" / "r"
    folder.mkdir(parents=True)
    (folder / ".x.json.0123456789abcdef.tmp").write_bytes(b"{half")
    assert store.list("") == []
    assert store.get("envs/r/x.json") is None
    assert store.put_if_absent("envs/r/x.json", b"{}") is True


def test_a_key_that_is_a_folder_is_not_an_object(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_if_absent("a/b/c", b"x")
    assert store.get("a/b") is None
    assert store.stat("a/b") is None


def test_writing_under_a_file_reports_a_store_error(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_if_absent("a/b", b"x")
    with pytest.raises(StoreError, match=r"failed to write `a/b/c` in store `file://"):
        store.put_if_absent("a/b/c", b"y")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_an_unwritable_store_reports_a_store_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(StoreError, match=r"failed to write `k/v` .*: Permission denied"):
            LocalStore(tmp_path).put_if_absent("k/v", b"x")
    finally:
        tmp_path.chmod(0o700)


# open_store


@pytest.mark.parametrize("form", ["file", "plain"])
def test_open_store_maps_file_urls_and_paths_to_local(tmp_path: Path, form: str) -> None:
    url = (tmp_path / "s").as_uri() if form == "file" else str(tmp_path / "s")
    store = open_store(url)
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / "s"


def test_open_store_resolves_a_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store(".envd/store")
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / ".envd" / "store"


def test_open_store_lists_supported_schemes_for_an_unknown_one() -> None:
    with pytest.raises(StoreError) as info:
        open_store("ftp://host/path")
    assert info.value.message == "failed to open store `ftp://host/path`: unknown scheme `ftp`"
    assert info.value.hint is not None and "file:///path" in info.value.hint


@pytest.mark.parametrize("url", ["", "file://host/path"])
def test_open_store_refuses_malformed_urls(url: str) -> None:
    with pytest.raises(StoreError, match="failed to open store"):
        open_store(url)
