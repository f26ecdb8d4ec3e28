"""`create` over a real LocalStore and py-rattler's real installer: exactly the description is
installed, or nothing is left."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from stored_env import archived_package, store_environment

from envd.client import create
from envd.errors import ArchiveIntegrityError, InstallError
from envd.store.layout import package_key
from envd.store.local import LocalStore
from harness import ROOT

PACKAGES = ROOT / "tests" / "fixtures" / "packages"
DEPENDENCY = PACKAGES / "conda-test-recipes" / "dependency-2.0-0.conda"
DEPENDENT = PACKAGES / "conda-test-recipes" / "dependent-2.0-0.conda"
ZLIB = PACKAGES / "conda-format-repo-linux-64" / "zlib-1.2.11-h7b6447c_3"


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def materialize(description: dict[str, Any], store: LocalStore, tmp_path: Path) -> Path:
    """What `envd-client create` does once it has the description."""
    prefix = tmp_path / "env"
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    archives = create.fetch_archives(description, store, scratch, lambda _: None)
    create.install(archives, prefix, description["platform"], tmp_path / "rattler-cache")
    return prefix


def two_recipes(store: LocalStore) -> dict[str, Any]:
    """`dependent` and the `dependency` it needs: a good environment."""
    packages = [archived_package(DEPENDENCY), archived_package(DEPENDENT)]
    return store_environment(store, packages, [DEPENDENCY, DEPENDENT], "linux-64")


def test_records_name_the_store_and_the_prefix_carries_no_cache_tag(
    store: LocalStore, tmp_path: Path
) -> None:
    doc = two_recipes(store)
    prefix = materialize(doc, store, tmp_path)
    assert sorted(p.name for p in prefix.iterdir()) == ["conda-meta"]
    for package in doc["packages"]:
        record = json.loads(
            (prefix / "conda-meta" / f"{package['name']}-2.0-0.json").read_text("utf-8")
        )
        (fmt,) = package["formats"]
        assert record["url"] == f"{store.url}/{package_key(fmt['sha256'], fmt['filename'])}"
        assert record["channel"] == store.url
        assert (record["fn"], record["sha256"]) == (fmt["filename"], fmt["sha256"])


def test_an_archive_that_is_another_package_fails_before_anything_is_linked(
    store: LocalStore, tmp_path: Path
) -> None:
    swapped = archived_package(DEPENDENT, stored_as=DEPENDENCY)  # its .conda is the other one
    doc = store_environment(store, [swapped], [DEPENDENCY], "linux-64")
    with pytest.raises(ArchiveIntegrityError) as info:
        materialize(doc, store, tmp_path)
    assert info.value.message == (
        "failed to verify `dependency-2.0-0.conda` from the store: the description lists it for "
        "package `dependent 2.0 0 (noarch)`, its info/index.json says `dependency 2.0 0 (noarch)`"
    )
    assert not (tmp_path / "env").exists()


@pytest.mark.parametrize(
    ("suffix", "problem"),
    [
        (
            ".tar.bz2",
            "`lib/libz.so` is a regular file of 0 bytes in the archive where `info/paths.json` "
            "says symlink",
        ),
        (".conda", "`lib/libz.so` is a symlink with no target in the archive"),
    ],
)
def test_a_payload_unlike_its_paths_json_fails_naming_package_and_file_and_leaves_nothing(
    store: LocalStore, tmp_path: Path, suffix: str, problem: str
) -> None:
    archive = ZLIB.with_name(ZLIB.name + suffix)
    doc = store_environment(store, [archived_package(archive)], [archive], "linux-64")
    with pytest.raises(ArchiveIntegrityError) as info:
        materialize(doc, store, tmp_path)
    assert info.value.message == (
        f"failed to install package `zlib 1.2.11 h7b6447c_3` from `{archive.name}`: {problem}"
    )
    assert info.value.hint == (
        "the package is broken as published: its files do not match its info/paths.json; "
        "pin another build of it"
    )
    assert not (tmp_path / "env").exists()


def test_an_empty_prefix_is_left_empty_after_a_failure(store: LocalStore, tmp_path: Path) -> None:
    archive = ZLIB.with_name(ZLIB.name + ".tar.bz2")
    doc = store_environment(store, [archived_package(archive)], [archive], "linux-64")
    (tmp_path / "env").mkdir()
    with pytest.raises(ArchiveIntegrityError):
        materialize(doc, store, tmp_path)
    assert list((tmp_path / "env").iterdir()) == []


def test_a_prefix_that_held_files_is_left_as_it_was_with_a_hint(
    store: LocalStore, tmp_path: Path
) -> None:
    archive = ZLIB.with_name(ZLIB.name + ".tar.bz2")
    doc = store_environment(store, [archived_package(archive)], [archive], "linux-64")
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "mine.txt").write_text("keep me")
    with pytest.raises(ArchiveIntegrityError) as info:
        materialize(doc, store, tmp_path)
    assert (tmp_path / "env" / "mine.txt").read_text() == "keep me"
    assert info.value.hint == (
        f"`{tmp_path / 'env'}` held files before (`--force`), so it was left as it is and may "
        "hold part of the environment; create into an empty directory instead"
    )


def test_installed_records_are_checked_against_the_description(
    store: LocalStore, tmp_path: Path
) -> None:
    doc = two_recipes(store)
    prefix = materialize(doc, store, tmp_path)
    archives = create.fetch_archives(doc, store, tmp_path / "scratch", lambda _: None)
    create._check_installed(prefix, archives)  # what install just checked
    with pytest.raises(InstallError) as extra:
        create._check_installed(prefix, archives[:1])
    assert extra.value.message == (
        f"failed to create environment in `{prefix}`: `conda-meta` has `dependent`, which the "
        "description does not list"
    )
    (prefix / "conda-meta" / "dependent-2.0-0.json").unlink()
    with pytest.raises(InstallError) as missing:
        create._check_installed(prefix, archives)
    assert missing.value.message == (
        f"failed to create environment in `{prefix}`: package `dependent 2.0 0` has no record "
        "in `conda-meta`"
    )
