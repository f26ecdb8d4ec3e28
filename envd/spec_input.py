"""The one place a request's spec is assembled from files and inline options (CLI and daemon)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rattler import Version, VersionSpec

from envd.errors import InvalidSpecError, RequestTooLargeError
from envd.requirements_txt import read_requirements_file, requirement_text
from envd.spec import (
    EnvType,
    RawDependency,
    RawSpec,
    Spec,
    normalize_find_links,
    normalize_python,
    normalize_spec,
)
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
    exclude_newer: str | None = None,
    find_links: Sequence[str] = (),
) -> LoadedSpec:
    """Read every file, add the inline options after them, check limits, normalize.

    Order matters only where it means priority: channels (files first, then `-c`) and PyPI
    indexes. `platforms` is the union of the files' `platforms:` lists, in order.
    """
    raw = RawSpec(python=python, exclude_newer=exclude_newer)
    warnings: list[str] = []
    for path in env_files:
        parsed = read_environment_file(path)
        _merge(raw, parsed.spec)
        warnings.extend(parsed.warnings)
    for path in requirement_files:
        requirements = read_requirements_file(path)
        raw.pypi.extend(requirements.dependencies)
        raw.pypi_indexes.extend(requirements.indexes)
        raw.pypi_find_links.extend(requirements.find_links)
    raw.conda.extend(RawDependency(text, PACKAGE_SOURCE) for text in packages)
    raw.pypi.extend(RawDependency(_inline_requirement(text), PYPI_SOURCE) for text in pypi)
    raw.channels.extend(channels)
    raw.pypi_find_links.extend(normalize_find_links(u, "--find-links") for u in find_links)
    raw.virtual_packages.update(parse_virtual_packages(virtual_packages))
    count = len(raw.conda) + len(raw.pypi)
    if count > MAX_DEPENDENCIES:
        raise RequestTooLargeError(
            f"failed to load spec: {count} dependencies is over the limit of {MAX_DEPENDENCIES}",
            hint="split the request into smaller environments",
        )
    _check_python(raw)
    platforms = tuple(dict.fromkeys(raw.platforms))
    return LoadedSpec(normalize_spec(raw), platforms, tuple(warnings))


def require_channels(spec: Spec) -> None:
    """A spec with conda dependencies (python included) must name a channel to resolve them
    from; a PyPI-only spec needs none. Checked by the client, before any job exists."""
    wants_conda = bool(spec.conda) or spec.python is not None
    if spec.env_type is EnvType.PYPI_ONLY or not wants_conda or spec.channels:
        return
    raise InvalidSpecError(
        "the spec has conda dependencies but names no channel to resolve them from",
        hint="add `-c conda-forge` (or a channel URL or folder), or `channels:` to the "
        "environment file",
    )


def _check_python(raw: RawSpec) -> None:
    """`--python` and a `python` dependency that no version satisfies both are refused at once,
    naming both (the solver would only say the request is unsatisfiable)."""
    if raw.python is None:
        return
    wanted = normalize_python(raw.python)
    for dep in raw.conda:
        try:
            folded = normalize_spec(RawSpec(conda=[dep])).python
        except InvalidSpecError:
            continue  # normalization reports it with its own words
        if folded is not None and not _compatible(wanted, folded):
            raise InvalidSpecError(
                f"conflicting python versions: `--python {raw.python}` and `{dep.text}` at "
                f"{dep.where()}",
                hint="give the python version once: `--python` or a `python` dependency",
            )


def _compatible(left: str, right: str) -> bool:
    """Whether some version satisfies both constraints, tried on the versions they mention and
    their neighbours; when unsure it answers yes and leaves the verdict to the solver."""
    if "*" in (left, right):
        return True
    candidates: set[str] = set()
    for version in re.findall(r"\d+(?:\.\d+)*", f"{left} {right}"):
        parts = version.split(".")
        last = int(parts[-1])
        neighbours = [".".join([*parts[:-1], str(n)]) for n in (last - 1, last + 1) if n >= 0]
        candidates |= {version, f"{version}.0", f"{version}.1", f"{version}.99", *neighbours}
    try:
        specs = VersionSpec(left), VersionSpec(right)
        return any(all(s.matches(Version(c)) for s in specs) for c in candidates)
    except Exception:  # a constraint rattler cannot read: normalization will say so
        return True


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
    raw.pypi_find_links.extend(other.pypi_find_links)
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
