"""Markers decided per target platform before resolving."""

from __future__ import annotations

import pytest

from envd.markers import applies, marker_environment
from envd.spec import RawDependency, RawSpec, normalize_spec


@pytest.mark.parametrize(
    ("marker", "platform", "python", "expected"),
    [
        ("sys_platform == 'win32'", "win-64", None, True),
        ("sys_platform == 'win32'", "linux-64", None, False),
        ("platform_system == 'Darwin' and platform_machine == 'arm64'", "osx-arm64", None, True),
        ("platform_system == 'Darwin' and platform_machine == 'arm64'", "osx-64", None, False),
        ("os_name == 'nt'", "linux-aarch64", None, False),
        ("python_version < '3.10'", "linux-64", "3.9.*", True),
        ("python_version < '3.10'", "linux-64", "3.11.*", False),
        ("python_version < '3.10'", "linux-64", ">=3.9", True),  # undecidable: kept
        ("implementation_name == 'pypy'", "linux-64", "3.9.*", True),  # undecidable: kept
        (None, "win-64", None, True),
    ],
)
def test_applies(marker: str | None, platform: str, python: str | None, expected: bool) -> None:
    assert applies(marker, platform, python) is expected


def test_environment_of_a_pinned_python() -> None:
    assert marker_environment("osx-arm64", "==3.9.19") == {
        "sys_platform": "darwin",
        "platform_system": "Darwin",
        "os_name": "posix",
        "platform_machine": "arm64",
        "python_version": "3.9",
        "python_full_version": "3.9.19",
    }


def test_spec_drops_decidably_false_requirements_per_platform() -> None:
    spec = normalize_spec(
        RawSpec(
            pypi=[RawDependency("pywin32; sys_platform == 'win32'"), RawDependency("requests")],
            python="3.11",
        )
    )
    assert spec.pypi_requirements_for("linux-64") == ["requests"]
    assert spec.pypi_requirements_for("win-64") == [
        'pywin32; sys_platform == "win32"',
        "requests",
    ]
