"""Descriptions for the lock-file tests: one environment on two platforms with conda packages
(platform-specific and noarch) and PyPI packages (a pure wheel with requirements and a platform
wheel), built through envd.description as an agent builds them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from envd.description import (
    BuildOrigin,
    ResolvedBy,
    ResolvedPackage,
    SolverInfo,
    build_description,
)
from envd.ids import req_id
from envd.spec import CondaDependency, PypiDependency, Spec

CHANNEL = "https://conda.example.invalid/forge"
INDEX = "https://pypi.example.invalid/simple"
PLATFORMS = ("linux-64", "osx-arm64")
# longer than a YAML line: a writer that folds it must still be read back whole
LONG_REQUIREMENT = (
    'envd-linux-only; sys_platform == "linux" and platform_machine == "x86_64" '
    'and implementation_name == "cpython" and platform_release != "0.0.0-envd-test"'
)
WHEEL_TAG = {
    "linux-64": "cp311-cp311-manylinux_2_17_x86_64",
    "osx-arm64": "cp311-cp311-macosx_11_0_arm64",
}


def _hex(text: str, size: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def conda(name: str, version: str, build: str, subdir: str, depends: tuple[str, ...] = (),
          ext: str = ".conda") -> ResolvedPackage:  # fmt: skip
    filename = f"{name}-{version}-{build}{ext}"
    return ResolvedPackage(
        kind="conda", name=name, version=version, build=build, channel=CHANNEL,
        url=f"{CHANNEL}/{subdir}/{filename}", filename=filename, sha256=_hex(filename, 64),
        md5=_hex("md5" + filename, 32), size=1000 + len(filename), subdir=subdir,
        depends=depends,
    )  # fmt: skip


def wheel(name: str, version: str, tag: str = "py3-none-any",
          depends: tuple[str, ...] = ()) -> ResolvedPackage:  # fmt: skip
    filename = f"{name.replace('-', '_')}-{version}-{tag}.whl"
    return ResolvedPackage(
        kind="pypi", name=name, version=version, build="", channel=INDEX,
        url=f"https://files.example.invalid/{filename}", filename=filename,
        sha256=_hex(filename, 64), md5=None, size=2000, subdir="noarch", depends=depends,
    )  # fmt: skip


def built_wheel(name: str, version: str, platform: str, wheel_sha256: str) -> ResolvedPackage:
    """A wheel envd built from an sdist on the index: its own filename and sha256 (those of
    this build), its url and `built` the source's, as agents/native_build.py records it."""
    sdist = f"{name}-{version}.tar.gz"
    source = f"https://files.example.invalid/{sdist}"
    filename = f"{name.replace('-', '_')}-{version}-{WHEEL_TAG[platform]}.whl"
    return ResolvedPackage(
        kind="pypi", name=name, version=version, build="", channel=INDEX, url=source,
        filename=filename, sha256=wheel_sha256, md5=None, size=3000, subdir=platform,
        built=BuildOrigin(source=source, sha256=_hex(sdist, 64), agent="mac-1", platform=platform),
    )  # fmt: skip


def spec(pypi: bool = True) -> Spec:
    return Spec(
        conda=(CondaDependency("python", "python 3.11.*"), CondaDependency("tzdata", "tzdata")),
        pypi=(PypiDependency("envd-app", "envd-app"),) if pypi else (),
        channels=(CHANNEL,),
        pypi_indexes=(INDEX,) if pypi else (),
    )


def packages(platform: str, python: str = "3.11.9", pypi: bool = True) -> list[ResolvedPackage]:
    build = "h1234567_0_cpython" if platform == "linux-64" else "h7654321_1_cpython"
    found = [
        conda("python", python, build, platform, ("tzdata", "libzlib >=1.2.13,<2.0a0")),
        conda("libzlib", "1.2.13", "h4ab18f5_6", platform, ext=".tar.bz2"),
        conda("tzdata", "2024a", "h0c530f3_0", "noarch"),
    ]
    if pypi:
        found += [
            wheel(
                "envd-app",
                "2.0",
                depends=("envd-native>=1", LONG_REQUIREMENT),
            ),
            wheel("envd-native", "1.0", WHEEL_TAG[platform]),
        ]
    return found


def description(platform: str, python: str = "3.11.9", pypi: bool = True) -> dict[str, Any]:
    the_spec = spec(pypi)
    return build_description(
        req_id=req_id(the_spec), platform=platform, spec=the_spec,
        packages=packages(platform, python, pypi),
        resolved_at=datetime(2024, 6, 1, tzinfo=UTC),
        resolved_by=ResolvedBy(user="tester", agent="none", host="tests"),
        solver=SolverInfo(name="by-hand", version="0"),
    )  # fmt: skip


def environment(python: str = "3.11.9", pypi: bool = True) -> dict[str, dict[str, Any]]:
    """platform → description."""
    return {p: description(p, python, pypi) for p in PLATFORMS}
