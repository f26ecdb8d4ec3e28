"""PEP 508 environment markers decided for a target platform before anything is resolved."""

from __future__ import annotations

import re

from packaging.markers import Marker

# What each platform family means to a marker. platform_machine is what Python reports there.
_FAMILIES: dict[str, dict[str, str]] = {
    "linux": {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"},
    "osx": {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix"},
    "win": {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt"},
}
_MACHINES = {
    "linux-64": "x86_64", "linux-aarch64": "aarch64", "linux-ppc64le": "ppc64le",
    "linux-s390x": "s390x", "linux-armv7l": "armv7l", "linux-32": "i686",
    "osx-64": "x86_64", "osx-arm64": "arm64",
    "win-64": "AMD64", "win-arm64": "ARM64", "win-32": "x86",
}  # fmt: skip
_NAME = re.compile(r"\b(python_full_version|python_version|implementation_name|"
                   r"platform_python_implementation|platform_release|platform_version|"
                   r"sys_platform|platform_system|os_name|platform_machine|extra)\b")  # fmt: skip
_MINOR = re.compile(r"^(?:==)?(\d+)\.(\d+)(?:\.\*|\.(\d+))?$")


def marker_environment(platform: str, python: str | None) -> dict[str, str]:
    """The marker variables envd knows for `platform` (and python, when it pins a minor)."""
    env = dict(_FAMILIES.get(platform.split("-", 1)[0], {}))
    if platform in _MACHINES:
        env["platform_machine"] = _MACHINES[platform]
    match = _MINOR.match(python or "")
    if match:
        env["python_version"] = f"{match[1]}.{match[2]}"
        if match[3] is not None:
            env["python_full_version"] = f"{match[1]}.{match[2]}.{match[3]}"
    return env


def applies(requirement_marker: str | None, platform: str, python: str | None) -> bool:
    """False only when the marker is decidably false on `platform`; a marker that needs what
    only a resolve knows (a python version not pinned, an implementation) keeps the
    requirement for the resolver to evaluate."""
    if not requirement_marker:
        return True
    env = marker_environment(platform, python)
    if set(_NAME.findall(requirement_marker)) - set(env):
        return True
    return Marker(requirement_marker).evaluate(env)
