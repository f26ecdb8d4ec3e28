"""The one place a request's spec is assembled from files and inline options (CLI and daemon)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rattler import Version

from envd.errors import InvalidSpecError, RequestTooLargeError
from envd.requirements_txt import read_requirements_file, requirement_text
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec
from envd.spec_files import read_environment_file

MAX_DEPENDENCIES = 5000
PACKAGE_SOURCE = "--package"
PYPI_SOURCE = "--pypi"
# conda's overrides for detected virtual packages; the empty string means "absent".
_OVERRIDES = {
    "CONDA_OVERRIDE_GLIBC": "__glibc",
    "CONDA_OVERRIDE_OSX": "__osx",
    "CONDA_OVERRIDE_CUDA": "__cuda",
}


@dataclass(frozen=True, slots=True)
class LoadedSpec:
    """A normalized spec, the target platforms its files name, and what was skipped."""

    spec: Spec
    platforms: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def load_spec(
    *,
    env_files: Sequence[Path] = (),
    requirement_files: Sequence[Path] = (),
    packages: Sequence[str] = (),
    pypi: Sequence[str] = (),
    python: str | None = None,
    channels: Sequence[str] = (),
    virtual_packages: Sequence[str] = (),
) -> LoadedSpec:
    """Read every file, add the inline options after them, check limits, normalize.

    Order matters only where it means priority: channels (files first, then `-c`) and PyPI
    indexes. `platforms` is the union of the files' `platforms:` lists, in order.
    """
    raw = RawSpec(python=python)
    warnings: list[str] = []
    for path in env_files:
        parsed = read_environment_file(path)
        _merge(raw, parsed.spec)
        warnings.extend(parsed.warnings)
    for path in requirement_files:
        requirements = read_requirements_file(path)
        raw.pypi.extend(requirements.dependencies)
        raw.pypi_indexes.extend(requirements.indexes)
    raw.conda.extend(RawDependency(text, PACKAGE_SOURCE) for text in packages)
    raw.pypi.extend(RawDependency(_inline_requirement(text), PYPI_SOURCE) for text in pypi)
    raw.channels.extend(channels)
    raw.virtual_packages.update(parse_virtual_packages(virtual_packages))
    count = len(raw.conda) + len(raw.pypi)
    if count > MAX_DEPENDENCIES:
        raise RequestTooLargeError(
            f"failed to load spec: {count} dependencies is over the limit of {MAX_DEPENDENCIES}",
            hint="split the request into smaller environments",
        )
    platforms = tuple(dict.fromkeys(raw.platforms))
    return LoadedSpec(normalize_spec(raw), platforms, tuple(warnings))


def parse_virtual_packages(items: Sequence[str]) -> dict[str, str]:
    """`__glibc=2.28`, `__archspec=1=x86_64`, `__cuda=` (absent) → {name: value}; last wins."""
    parsed: dict[str, str] = {}
    for item in items:
        name, equals, value = item.strip().partition("=")
        name = name.strip().lower()
        value = value.strip()
        if not equals or not name.startswith("__") or len(name) < 3:
            raise InvalidSpecError(
                f"failed to parse virtual package `{item}`: expected `__NAME=VERSION`",
                hint="e.g. `__glibc=2.28`, `__cuda=12.0`, `__archspec=1=x86_64`; "
                "`__cuda=` removes it",
            )
        if value:
            _check_version(item, value.split("=", 1)[0])
        parsed[name] = value
    return parsed


def virtual_packages_from_environ(environ: Mapping[str, str]) -> list[str]:
    """conda's `CONDA_OVERRIDE_GLIBC/OSX/CUDA` as `__glibc=…` items (empty value: absent)."""
    return [
        f"{name}={environ[variable].strip()}"
        for variable, name in sorted(_OVERRIDES.items(), key=lambda pair: pair[1])
        if variable in environ
    ]


def _merge(raw: RawSpec, other: RawSpec) -> None:
    raw.conda.extend(other.conda)
    raw.pypi.extend(other.pypi)
    raw.channels.extend(other.channels)
    raw.pypi_indexes.extend(other.pypi_indexes)
    raw.platforms.extend(other.platforms)
    raw.virtual_packages.update(other.virtual_packages)


def _inline_requirement(text: str) -> str:
    if text.strip().startswith("-"):
        raise InvalidSpecError(
            f"failed to parse PyPI requirement `{text}` at {PYPI_SOURCE}: options are not "
            "requirements",
            hint="put pip options such as `--index-url` in a requirements file passed with `-r`",
        )
    return requirement_text(text, PYPI_SOURCE)


def _check_version(item: str, version: str) -> None:
    try:
        Version(version)
    except Exception as err:
        raise InvalidSpecError(
            f"failed to parse virtual package `{item}`: `{version}` is not a version: {err}",
            hint="e.g. `__glibc=2.28`",
        ) from err
