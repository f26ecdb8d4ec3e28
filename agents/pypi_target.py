"""A conda platform as a PyPI target: uv's `--python-platform`, the wheel tags it accepts."""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms

from envd.errors import InvalidSpecError, UnknownPlatformError
from envd.platforms import effective_virtual_packages

# conda platform → (uv's architecture word, the wheel tags' architecture word)
_LINUX = {"linux-64": "x86_64", "linux-aarch64": "aarch64"}
_MACOS = {"osx-64": "x86_64", "osx-arm64": "arm64"}
_UV_MACOS = {"osx-64": "x86_64-apple-darwin", "osx-arm64": "aarch64-apple-darwin"}
_WINDOWS = {"win-64": ("x86_64-pc-windows-msvc", "win_amd64"),
            "win-arm64": ("aarch64-pc-windows-msvc", "win_arm64")}  # fmt: skip
# the manylinux levels uv can target (`uv pip compile --help`, uv 0.13); 2.17 is manylinux2014
UV_MANYLINUX = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
_OLDEST_GLIBC_MINOR = 5
_PYTHON = re.compile(r"^(?:==)?(3)\.(\d+)(?:\.\*|\.(\d+))?$")


@dataclass(frozen=True, slots=True)
class PypiTarget:
    """What uv is told about a target, and the wheel tags that install there, best first."""

    platform: str
    python_version: str  # `3.11` or `3.11.4`
    python_platform: str  # uv's `--python-platform`
    macos_target: str | None  # MACOSX_DEPLOYMENT_TARGET for uv, from `__osx`
    tags: tuple[Tag, ...]

    def rank(self, wheel_tags: frozenset[Tag]) -> int | None:
        """The position of the wheel's best tag among the target's (lower is better), or None
        when the wheel does not install on the target."""
        ranks = [self._ranks[t] for t in wheel_tags if t in self._ranks]
        return min(ranks) if ranks else None

    @property
    def _ranks(self) -> dict[Tag, int]:
        return {tag: index for index, tag in enumerate(self.tags)}


def python_version(python: str | None) -> str:
    """The version uv resolves for, from the spec's python (`3.11.*` → `3.11`); PyPI
    resolution needs one minor version, since wheels and markers depend on it."""
    match = _PYTHON.match(python or "")
    if match is None:
        shown = f"`{python}`" if python else "none"
        raise InvalidSpecError(
            f"failed to resolve PyPI requirements: they need one python version, the spec gives "
            f"{shown}",
            hint="pass `--python 3.11` (a minor version, or an exact one such as `3.11.4`)",
        )
    major, minor, micro = match[1], match[2], match[3]
    return f"{major}.{minor}" if micro is None else f"{major}.{minor}.{micro}"


def pypi_target(platform: str, python: str | None, overrides: dict[str, str]) -> PypiTarget:
    """The target of `platform` for the spec's python, its manylinux level from `__glibc` and
    its macOS deployment target from `__osx` (envd's defaults, or the request's overrides)."""
    version = python_version(python)
    interpreter = tuple(int(p) for p in version.split(".")[:2])
    virtual = effective_virtual_packages(platform, overrides)
    if platform in _LINUX:
        arch = _LINUX[platform]
        level = _glibc_minor(virtual.get("__glibc"), platform)
        uv_level = max((m for m in UV_MANYLINUX if m <= level), default=None)
        if uv_level is None:
            raise InvalidSpecError(
                f"failed to resolve PyPI requirements for `{platform}`: `__glibc` "
                f"{virtual.get('__glibc')} is older than manylinux2014 (glibc 2.17)",
                hint="PyPI resolution needs `__glibc` 2.17 or newer",
            )
        platforms = _manylinux_platforms(arch, level)
        return PypiTarget(platform, version, f"{arch}-manylinux_2_{uv_level}", None,
                          _tags(interpreter, platforms))  # fmt: skip
    if platform in _MACOS:
        osx = virtual.get("__osx", "11.0")
        major, _, rest = osx.partition(".")
        minor = rest.partition(".")[0] or "0"
        if not (major.isdigit() and minor.isdigit()):
            raise InvalidSpecError(f"`__osx` `{osx}` is not a macOS version such as `11.0`")
        mac = list(mac_platforms((int(major), int(minor)), _MACOS[platform]))
        return PypiTarget(platform, version, _UV_MACOS[platform], f"{major}.{minor}",
                          _tags(interpreter, mac))  # fmt: skip
    if platform in _WINDOWS:
        uv_platform, tag = _WINDOWS[platform]
        return PypiTarget(platform, version, uv_platform, None, _tags(interpreter, [tag]))
    raise UnknownPlatformError(
        f"failed to resolve PyPI requirements: platform `{platform}` has no PyPI target",
        hint="PyPI targets: " + ", ".join(sorted([*_LINUX, *_MACOS, *_WINDOWS])),
    )


def _glibc_minor(value: str | None, platform: str) -> int:
    major, _, rest = (value or "").partition(".")
    minor = rest.partition(".")[0]
    if major != "2" or not minor.isdigit():
        raise InvalidSpecError(
            f"failed to resolve PyPI requirements for `{platform}`: `__glibc` is "
            f"`{value}`, not a glibc version such as `2.17`",
            hint="pass `--virtual-package __glibc=2.17` (or newer)",
        )
    return int(minor)


def _manylinux_platforms(arch: str, level: int) -> list[str]:
    """manylinux_2_<level> down to 2_5, each followed by its legacy alias (PEP 600)."""
    names: list[str] = []
    for minor in range(level, _OLDEST_GLIBC_MINOR - 1, -1):
        names.append(f"manylinux_2_{minor}_{arch}")
        if minor in _LEGACY_MANYLINUX:
            names.append(f"{_LEGACY_MANYLINUX[minor]}_{arch}")
    return names


def _tags(interpreter: tuple[int, ...], platforms: list[str]) -> tuple[Tag, ...]:
    """CPython's tags for the target (its ABIs, abi3, none), then the pure ones."""
    found = list(cpython_tags(interpreter, platforms=platforms))
    found += compatible_tags(interpreter, f"cp{interpreter[0]}{interpreter[1]}", platforms)
    return tuple(dict.fromkeys(found))
