"""Native builds without a build: the tag check, auditwheel's verdict, built records read and
verified from a real local store, and what a non-native agent does (hands the job back)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from envd.agents.built_record import BuiltRecord, python_tag
from envd.agents.fetch import Fetcher
from envd.agents.native_build import NativeBuildNeeded, NativeBuilds, audit_plan
from envd.agents.pylock import SourceArchive, Unbuilt
from envd.agents.pypi_target import pypi_target
from envd.agents.wheel_fit import check_wheel_tags
from envd.errors import ArchiveIntegrityError, WheelBuildError
from envd.store.layout import built_key, package_key
from envd.store.local import LocalStore

LINUX = pypi_target("linux-64", "3.11", {})
MAC = pypi_target("osx-arm64", "3.11", {})
SOURCE_SHA = "5" * 64
INDEX = "https://pypi.example/simple"
PURE = "envd_pure-1.0-py3-none-any.whl"
SHOW_2_5 = (
    "envd_speed-1.0-cp311-cp311-linux_x86_64.whl is consistent with the\n"
    'following platform tag: "manylinux_2_5_x86_64".\n'
)
SHOW_2_34 = SHOW_2_5.replace("manylinux_2_5_", "manylinux_2_34_")


def test_a_linux_wheel_is_never_accepted_for_macos_and_both_tags_are_named() -> None:
    with pytest.raises(WheelBuildError) as info:
        check_wheel_tags("x-1.0-cp311-cp311-linux_x86_64.whl", MAC, "`x 1.0`")
    assert info.value.message == (
        "failed to build `x 1.0` for `osx-arm64`: the wheel is tagged `cp311-cp311-linux_x86_64`, "
        "which does not install on the target (`cp311-cp311-macosx_11_0_arm64`)"
    )
    check_wheel_tags(PURE, MAC, "`x 1.0`")
    check_wheel_tags("x-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", LINUX, "`x`")
    with pytest.raises(WheelBuildError, match="`cp312-cp312-manylinux_2_17_x86_64`"):
        check_wheel_tags("x-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", LINUX, "`x`")


def test_auditwheel_decides_repair_to_the_requests_manylinux_or_refusal() -> None:
    assert audit_plan(SHOW_2_5, LINUX, "`x`") == "manylinux_2_17_x86_64"
    newer = pypi_target("linux-64", "3.11", {"__glibc": "2.34"})
    assert audit_plan(SHOW_2_34, newer, "`x`") == "manylinux_2_34_x86_64"
    with pytest.raises(WheelBuildError) as info:
        audit_plan(SHOW_2_34, LINUX, "`x 1.0`")
    assert info.value.message == (
        "failed to build `x 1.0` for `linux-64`: the wheel needs glibc 2.34 "
        "(`manylinux_2_34_x86_64`), newer than the request's `__glibc` 2.17"
    )
    with pytest.raises(WheelBuildError, match="fits no manylinux tag"):
        audit_plan("envd_speed is not consistent with any platform tag", LINUX, "`x`")
    assert audit_plan(SHOW_2_5, MAC, "`x`") is None  # not a linux target


def record(**changes: object) -> BuiltRecord:
    base = BuiltRecord(SOURCE_SHA, "https://f/envd_pure-1.0.tar.gz", "cp311", "osx-arm64",
                       PURE, "6" * 64, 10, "mac")  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_built_record_is_trusted_only_for_its_source_python_platform_and_tags() -> None:
    good = record()
    assert BuiltRecord.decode(good.encode(), SOURCE_SHA, MAC) == good
    assert python_tag(pypi_target("linux-64", "3.12.1", {})) == "cp312"
    refused = [
        b"{not json",
        good.encode().replace(b"envd-built-v1", b"envd-built-v9"),
        record(source_sha256="7" * 64).encode(),
        record(python="cp312").encode(),
        record(platform="linux-64").encode(),
        record(filename="envd_speed-1.0-cp311-cp311-linux_x86_64.whl").encode(),
        record(sha256="nothex").encode(),
        record(filename="../x.whl").encode(),
    ]
    for data in refused:
        assert BuiltRecord.decode(data, SOURCE_SHA, MAC) is None, data


def unbuilt(source: SourceArchive | None = None) -> Unbuilt:
    archive = source or SourceArchive("https://f/envd_pure-1.0.tar.gz", "envd_pure-1.0.tar.gz",
                                      SOURCE_SHA, 100, INDEX)  # fmt: skip
    return Unbuilt("envd-pure", "1.0", "sdist only", archive)


def builds(tmp_path: Path, native: str, pythons: dict[str, str] | None = None) -> NativeBuilds:
    return NativeBuilds(
        LocalStore(tmp_path / "store"), Fetcher(attempts=1), tmp_path / "cache",
        agent_id="here", native_platform=native,
        pythons={"3.11": "/usr/bin/python3"} if pythons is None else pythons,
    )  # fmt: skip


def test_a_recorded_build_is_reused_by_any_agent_and_named_in_built(tmp_path: Path) -> None:
    linux = builds(tmp_path, "linux-64")
    wheel = b"wheel bytes"
    sha = hashlib.sha256(wheel).hexdigest()
    linux.store.put_if_absent(package_key(sha, PURE), wheel)
    stored = record(sha256=sha, size=len(wheel))
    linux.store.put_if_absent(built_key(SOURCE_SHA, "cp311", "osx-arm64"), stored.encode())
    (package,) = asyncio.run(linux.provide([unbuilt()], MAC, [INDEX]))
    assert (package.filename, package.sha256, package.size) == (PURE, sha, len(wheel))
    assert package.built is not None and package.built.agent == "mac"
    assert (package.built.sha256, package.built.source) == (SOURCE_SHA, stored.source_url)
    assert package.identity().sha256 == SOURCE_SHA and package.subdir == "noarch"
    assert (linux.reused, linux.built) == (1, 0)


def test_a_non_native_agent_hands_back_what_needs_building(tmp_path: Path) -> None:
    linux = builds(tmp_path, "linux-64")
    # a record whose wheel left the store does not count
    linux.store.put_if_absent(built_key(SOURCE_SHA, "cp311", "osx-arm64"), record().encode())
    with pytest.raises(NativeBuildNeeded) as info:
        asyncio.run(linux.provide([unbuilt()], MAC, [INDEX]))
    assert (info.value.platform, info.value.python) == ("osx-arm64", "3.11")
    assert info.value.builds == ("envd-pure 1.0 (sdist only)",)


def test_a_native_agent_without_the_python_hands_back_naming_it(tmp_path: Path) -> None:
    """Another native agent may build for it: the coordinator routes the job by python."""
    mac = builds(tmp_path, "osx-arm64", {"3.11": "/p311", "3.10": "/p310"})
    target = pypi_target("osx-arm64", "3.12.4", {})
    with pytest.raises(NativeBuildNeeded) as info:
        asyncio.run(mac.provide([unbuilt()], target, [INDEX]))
    assert (info.value.platform, info.value.python) == ("osx-arm64", "3.12")
    assert info.value.builds == ("envd-pure 1.0 (sdist only)",)
    assert str(info.value) == (
        "needs a native build on a `osx-arm64` agent with python 3.12: envd-pure 1.0 (sdist only)"
    )
    assert mac.built == 0


def test_a_source_without_a_sha256_to_check_is_not_built(tmp_path: Path) -> None:
    mac = builds(tmp_path, "osx-arm64")
    git = Unbuilt("envd-pure", "1.0", "git source")
    with pytest.raises(WheelBuildError) as info:
        asyncio.run(mac.provide([git], MAC, [INDEX]))
    assert info.value.message == (
        "failed to build `envd-pure 1.0` for `osx-arm64` (git source): envd does not build git "
        "sources: a build is recorded and reused by its source's sha256, and a git checkout "
        "has none envd could verify"
    )
    assert info.value.hint is not None and "`name @ ./checkout`" in info.value.hint
    other = Unbuilt("envd-pure", "1.0", "no wheel or source in the lock")
    with pytest.raises(WheelBuildError, match=r"\(no wheel or source in the lock\): envd build"):
        asyncio.run(mac.provide([other], MAC, [INDEX]))


def test_a_tampered_source_is_refused_before_any_build(tmp_path: Path) -> None:
    sdist = tmp_path / "envd_pure-1.0.tar.gz"
    sdist.write_bytes(b"not what the index hashed")
    source = SourceArchive(sdist.as_uri(), sdist.name, SOURCE_SHA, None, INDEX)
    mac = builds(tmp_path, "osx-arm64")
    with pytest.raises(ArchiveIntegrityError, match="sha256 is `"):
        asyncio.run(mac.provide([unbuilt(source)], MAC, [INDEX]))
    assert not (tmp_path / "store" / "built").exists()


def test_publishing_keeps_a_first_record_and_replaces_a_dangling_one(tmp_path: Path) -> None:
    mac = builds(tmp_path, "osx-arm64")
    key = built_key(SOURCE_SHA, "cp311", "osx-arm64")
    wheel = tmp_path / PURE
    wheel.write_bytes(b"built here")
    mine_sha = hashlib.sha256(b"built here").hexdigest()
    source = unbuilt().source
    assert source is not None
    mac.store.put_if_absent(key, record().encode())  # its wheel is not in the store
    published = mac._publish(wheel, source, MAC)
    assert (published.sha256, published.agent, mac.built) == (mine_sha, "here", 1)
    stored = mac.store.get(key)
    assert stored is not None and BuiltRecord.decode(stored, SOURCE_SHA, MAC) == published
    # a second build of the same source (other bytes) loses to the record now there
    wheel.write_bytes(b"built again, other bytes")
    assert mac._publish(wheel, source, MAC) == published
    assert mac.built == 1
