"""Local sources (`envd-source://`) on the native build path: a packed sdist becomes a build
named by its content address, a packed wheel is used as it is when it fits the target, and the
building agent reads the source from the store, verified. Git sources are refused up front."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from envd.agents.built_record import BuiltRecord
from envd.agents.fetch import Fetcher
from envd.agents.native_build import NativeBuildNeeded, NativeBuilds
from envd.agents.pylock import SourceArchive, Unbuilt, read_lock_packages
from envd.agents.pypi_resolver import PypiResolver
from envd.agents.pypi_target import pypi_target
from envd.agents.resolver import ResolveRequest
from envd.errors import ArchiveIntegrityError, InternalError, StoreError, WheelBuildError
from envd.spec import RawDependency, RawSpec, normalize_spec, source_url
from envd.store.layout import built_key, package_key
from envd.store.local import LocalStore

LINUX = pypi_target("linux-64", "3.11", {})
MAC = pypi_target("osx-arm64", "3.11", {})
INDEX = "http://127.0.0.1:9/simple"
SDIST = b"the packed sdist"
SDIST_SHA = hashlib.sha256(SDIST).hexdigest()
PURE = "mypkg-0.1-py3-none-any.whl"
LINUX_WHEEL = "mypkg-0.1-cp311-cp311-manylinux_2_17_x86_64.whl"


def lock(filename: str, sha256: str, folder_sha: str | None = None) -> str:
    """uv's entry for a file `fetch_sources` wrote under the resolve's temp folder."""
    path = f"/agent/cache/pypi-tmp/resolve-x/sources/{folder_sha or sha256}/{filename}"
    return (f'lock-version = "1.0"\n[[packages]]\nname = "mypkg"\nversion = "0.1"\n'
            f'archive = {{ path = "{path}", hashes = {{ sha256 = "{sha256}" }} }}\n')  # fmt: skip


def test_a_local_sdist_is_to_build_and_named_by_its_content_address() -> None:
    found = read_lock_packages(lock("mypkg-0.1.tar.gz", SDIST_SHA), LINUX, [INDEX])
    assert found.packages == ()
    (item,) = found.unbuilt
    assert item.shown() == "mypkg 0.1 (local source)"
    assert item.source == SourceArchive(
        source_url(SDIST_SHA, "mypkg-0.1.tar.gz"), "mypkg-0.1.tar.gz", SDIST_SHA, None, INDEX
    )
    with pytest.raises(InternalError, match=f"fetched and verified as `{'b' * 64}`"):
        read_lock_packages(lock("mypkg-0.1.tar.gz", SDIST_SHA, "b" * 64), LINUX, [INDEX])


def test_a_local_wheel_that_fits_is_used_as_it_is_and_one_that_does_not_is_refused() -> None:
    sha = "c" * 64
    (pure,) = read_lock_packages(lock(PURE, sha), MAC, [INDEX]).packages
    assert (pure.url, pure.filename, pure.sha256, pure.subdir, pure.built) == (
        source_url(sha, PURE), PURE, sha, "noarch", None,
    )  # fmt: skip
    (native,) = read_lock_packages(lock(LINUX_WHEEL, sha), LINUX, [INDEX]).packages
    assert (native.filename, native.subdir) == (LINUX_WHEEL, "linux-64")
    with pytest.raises(WheelBuildError) as info:
        read_lock_packages(lock(LINUX_WHEEL, sha), MAC, [INDEX])
    assert info.value.message == (
        f"failed to use the wheel `{LINUX_WHEEL}` of `mypkg 0.1` for `osx-arm64`: the wheel is "
        "tagged `cp311-cp311-manylinux_2_17_x86_64`, which does not install on the target "
        "(`cp311-cp311-macosx_11_0_arm64`)"
    )
    with pytest.raises(WheelBuildError, match="not a valid wheel filename"):
        read_lock_packages(lock("mypkg.whl", sha), LINUX, [INDEX])


def test_a_wheel_at_a_url_is_used_as_it_is_too() -> None:
    text = lock(PURE, "d" * 64).replace('path = "/agent/cache/pypi-tmp/resolve-x/sources/'
                                        f'{"d" * 64}/', 'url = "https://files.example/')  # fmt: skip
    (package,) = read_lock_packages(text, LINUX, [INDEX]).packages
    assert (package.url, package.sha256) == (f"https://files.example/{PURE}", "d" * 64)


def local_item() -> Unbuilt:
    (item,) = read_lock_packages(lock("mypkg-0.1.tar.gz", SDIST_SHA), LINUX, [INDEX]).unbuilt
    return item


def builds(tmp_path: Path, native: str) -> NativeBuilds:
    return NativeBuilds(
        LocalStore(tmp_path / "store"), Fetcher(attempts=1), tmp_path / "cache",
        agent_id="here", native_platform=native, pythons={"3.11": "/usr/bin/python3"},
    )  # fmt: skip


def test_a_non_native_agent_hands_a_local_source_back(tmp_path: Path) -> None:
    mac = builds(tmp_path, "osx-arm64")
    with pytest.raises(NativeBuildNeeded) as info:
        asyncio.run(mac.provide([local_item()], LINUX, [INDEX]))
    assert (info.value.platform, info.value.builds) == ("linux-64", ("mypkg 0.1 (local source)",))


def test_the_building_agent_reads_the_source_from_the_store_verified(tmp_path: Path) -> None:
    linux = builds(tmp_path, "linux-64")
    with pytest.raises(StoreError, match=r"`pkgs/[0-9a-f]{64}/mypkg-0\.1\.tar\.gz` is not in"):
        asyncio.run(linux.provide([local_item()], LINUX, [INDEX]))
    linux.store.put_if_absent(package_key(SDIST_SHA, "mypkg-0.1.tar.gz"), b"not the sdist")
    with pytest.raises(ArchiveIntegrityError, match=r"failed to verify local source `mypkg-0\.1"):
        asyncio.run(linux.provide([local_item()], LINUX, [INDEX]))
    assert not (tmp_path / "store" / "built").exists() and linux.built == 0


def test_a_recorded_build_of_a_local_source_is_reused_and_named(tmp_path: Path) -> None:
    linux = builds(tmp_path, "linux-64")
    wheel = b"wheel bytes"
    sha = hashlib.sha256(wheel).hexdigest()
    linux.store.put_if_absent(package_key(sha, PURE), wheel)
    url = source_url(SDIST_SHA, "mypkg-0.1.tar.gz")
    record = BuiltRecord(SDIST_SHA, url, "cp311", "linux-64", PURE, sha, len(wheel), "other")
    linux.store.put_if_absent(built_key(SDIST_SHA, "cp311", "linux-64"), record.encode())
    (package,) = asyncio.run(linux.provide([local_item()], LINUX, [INDEX]))
    assert (package.filename, package.sha256, package.url) == (PURE, sha, url)
    assert package.built is not None
    assert (package.built.source, package.built.sha256, package.built.agent) == (
        url, SDIST_SHA, "other",
    )  # fmt: skip
    assert package.identity().sha256 == SDIST_SHA
    assert (linux.reused, linux.built) == (1, 0)


def test_a_git_requirement_is_refused_before_uv_clones_it(tmp_path: Path) -> None:
    url = f"git+https://127.0.0.1:9/envd-pure.git@{'a' * 40}"
    raw = RawSpec(pypi=[RawDependency("envd-app"), RawDependency(f"envd-pure @ {url}")],
                  python="3.11", pypi_indexes=[INDEX])  # fmt: skip
    resolver = PypiResolver(tmp_path / "cache", attempts=1)
    with pytest.raises(WheelBuildError) as info:
        asyncio.run(resolver.resolve(ResolveRequest(normalize_spec(raw), "linux-64")))
    assert info.value.message == (
        f"failed to build `envd-pure @ {url}` for `linux-64` (git source): envd does not build "
        "git sources: a build is recorded and reused by its source's sha256, and a git checkout "
        "has none envd could verify"
    )
    assert info.value.hint is not None and "envd-client packs git requirements" in info.value.hint
    assert not (tmp_path / "cache").exists()  # uv never ran
