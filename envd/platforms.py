"""Target platforms (conda subdirs), the selectors that match them, and their virtual packages."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from rattler import BuildString, GenericVirtualPackage, PackageName, Subdir, Version

from envd.errors import UnknownPlatformError

NOARCH = "noarch"


@cache
def known_platforms() -> tuple[str, ...]:
    """Every subdir py-rattler knows, except `noarch` (which is never a target)."""
    names = {str(p) for p in Subdir.all()}
    names.discard(NOARCH)
    return tuple(sorted(names))


def check_platform(name: str) -> str:
    """Return `name` if it is a target platform, else fail listing the valid ones."""
    if name in known_platforms():
        return name
    raise UnknownPlatformError(
        f"unknown platform `{name}`",
        hint="valid platforms: " + ", ".join(known_platforms()),
    )


def host_platform_name() -> str:
    """The conda subdir of the machine this runs on (the client's default `--arch`)."""
    return str(Subdir.current())


# Selector words conda-lock understands (`# [linux]` …), as a map from platform to the words
# that are true on it. Platforms outside this table match the family words of their prefix.
_SELECTORS: dict[str, frozenset[str]] = {
    "linux-64": frozenset({"linux64", "unix", "linux"}),
    "linux-aarch64": frozenset({"aarch64", "unix", "linux"}),
    "linux-ppc64le": frozenset({"ppc64le", "unix", "linux"}),
    "osx-64": frozenset({"osx64", "osx", "unix"}),
    "osx-arm64": frozenset({"arm64", "osx", "unix"}),
    "win-64": frozenset({"win", "win64"}),
}
SELECTOR_WORDS: frozenset[str] = frozenset().union(*_SELECTORS.values()) | {"win32", "win-arm64"}


def selector_matches(selector: str | None, platform: str) -> bool:
    """Whether a dependency guarded by `# [selector]` applies on `platform`."""
    if selector is None:
        return True
    words = _SELECTORS.get(platform)
    if words is None:
        family = platform.split("-", 1)[0]
        words = frozenset({family, "unix"} if family in {"linux", "osx"} else {family})
    return selector in words


@cache
def _virtual_package_defaults() -> dict[str, dict[str, str]]:
    text = resources.files("envd.data").joinpath("virtual_packages.json").read_text("utf-8")
    data: dict[str, dict[str, str]] = json.loads(text)["platforms"]
    return data


def default_virtual_packages(platform: str) -> dict[str, str]:
    """envd's documented virtual packages for `platform` (never detected from the host).

    Values are `version` or `version=build`. A result must not depend on the agent's machine,
    so these are fixed per platform and only a request's overrides change them.
    """
    table = _virtual_package_defaults()
    if platform in table:
        return dict(table[platform])
    family = platform.split("-", 1)[0]
    return dict(table.get(f"{family}-*", {}))


def effective_virtual_packages(platform: str, overrides: dict[str, str]) -> dict[str, str]:
    """Defaults for the platform with a request's overrides applied (empty value removes)."""
    merged = default_virtual_packages(platform)
    for name, value in overrides.items():
        if value == "":
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def rattler_virtual_packages(values: dict[str, str]) -> list[GenericVirtualPackage]:
    """`{"__glibc": "2.17", "__archspec": "1=x86_64"}` as the solver's virtual packages."""
    packages = []
    for name, value in sorted(values.items()):
        version, _, build = value.partition("=")
        packages.append(
            GenericVirtualPackage(PackageName(name), Version(version), BuildString(build or "0"))
        )
    return packages
