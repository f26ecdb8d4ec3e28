"""The PyPI target of a conda platform: uv's `--python-platform` and the wheel tags, ranked."""

from __future__ import annotations

import pytest
from packaging.tags import Tag
from packaging.utils import parse_wheel_filename

from envd.agents.pypi_target import pypi_target, python_version
from envd.errors import InvalidSpecError, UnknownPlatformError


def rank(platform: str, filename: str, overrides: dict[str, str] | None = None) -> int | None:
    tags: frozenset[Tag] = parse_wheel_filename(filename)[3]
    return pypi_target(platform, "3.11.*", overrides or {}).rank(tags)


def test_linux_level_follows_glibc() -> None:
    target = pypi_target("linux-64", "3.11.*", {})
    assert (target.python_platform, target.python_version) == ("x86_64-manylinux_2_17", "3.11")
    newer = pypi_target("linux-64", "3.11.*", {"__glibc": "2.29"})
    assert newer.python_platform == "x86_64-manylinux_2_28"
    assert pypi_target("linux-aarch64", "3.12", {}).python_platform == "aarch64-manylinux_2_17"
    assert rank("linux-64", "x-1-cp311-cp311-manylinux_2_28_x86_64.whl") is None
    assert rank("linux-64", "x-1-cp311-cp311-manylinux_2_28_x86_64.whl", {"__glibc": "2.28"}) == 0
    assert rank("linux-64", "x-1-cp311-cp311-linux_x86_64.whl") is None


def test_macos_target_follows_osx() -> None:
    target = pypi_target("osx-arm64", "3.11.*", {})
    assert (target.python_platform, target.macos_target) == ("aarch64-apple-darwin", "11.0")
    assert rank("osx-arm64", "x-1-cp311-cp311-macosx_12_0_arm64.whl") is None
    assert rank("osx-arm64", "x-1-cp311-cp311-macosx_12_0_arm64.whl", {"__osx": "13.1"}) is not None
    assert rank("osx-arm64", "x-1-cp311-cp311-macosx_10_9_x86_64.whl") is None
    assert pypi_target("osx-64", "3.11.*", {}).macos_target == "10.15"


def test_best_wheel_ranks_first() -> None:
    native = rank("linux-64", "x-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    abi3 = rank("linux-64", "x-1-cp38-abi3-manylinux2014_x86_64.whl")
    pure = rank("linux-64", "x-1-py3-none-any.whl")
    assert native is not None and abi3 is not None and pure is not None
    assert native < abi3 < pure
    assert rank("linux-64", "x-1-cp312-cp312-manylinux2014_x86_64.whl") is None


def test_python_version_needs_one_minor() -> None:
    assert [python_version(p) for p in ("3.11.*", "3.11", "==3.11.4", "3.12.1")] == [
        "3.11", "3.11", "3.11.4", "3.12.1",
    ]  # fmt: skip
    for bad in (None, ">=3.9,<3.12", "3"):
        with pytest.raises(InvalidSpecError, match="need one python version"):
            python_version(bad)


def test_unknown_targets_are_refused() -> None:
    with pytest.raises(UnknownPlatformError, match="platform `linux-ppc64le` has no PyPI target"):
        pypi_target("linux-ppc64le", "3.11", {})
    with pytest.raises(InvalidSpecError, match="older than manylinux2014"):
        pypi_target("linux-64", "3.11", {"__glibc": "2.12"})
