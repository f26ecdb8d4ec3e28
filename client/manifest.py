"""The pre-deploy manifest: a deployment's steps, each with its environment and platforms.

    version: 1                      # required; the only format so far
    name: nightly-training          # optional; shown in the result
    steps:                          # required, at least one
      - name: prepare               # required, unique: letters, digits, `_`, `.`, `-`
        platforms: [linux-64]       # required: the platforms the step runs on
        environment:                # required: a spec, or an alias, not both
          files: [envs/prepare.yml]     # environment.yml files, relative to the manifest
          requirements: [reqs.txt]      # requirements.txt files, relative to the manifest
          packages: ["numpy>=1.20"]     # conda MatchSpecs
          pypi: ["requests>=2"]         # PyPI requirements
          find_links: ["https://h.example/wheels/"]  # http(s) pages of archive links (pip's -f)
          python: "3.11"                # a string: YAML reads 3.10 as the number 3.1
          channels: [conda-forge]       # names, URLs or folders, in priority order
          virtual_packages: ["__glibc=2.28"]
          exclude_newer: "2024-06-01"
      - name: serve
        platforms: [linux-64, linux-aarch64]
        environment:
          alias: ml_team/serve_env:v1   # confirmed, not resolved: it must exist and verify

Every list is a YAML list of strings. docs/pre-deploy.md is the user's copy of this schema.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from envd.errors import EnvdError, InvalidManifestError

MANIFEST_VERSION = 1
_STEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_TOP_KEYS = ("version", "name", "steps")
_STEP_KEYS = ("name", "platforms", "environment")
_LISTS = ("files", "requirements", "packages", "pypi", "channels", "virtual_packages", "find_links")
_SPEC_KEYS = (*_LISTS, "python", "exclude_newer")
_ENVIRONMENT_KEYS = ("alias", *_SPEC_KEYS)
_SCHEMA_HINT = "docs/pre-deploy.md describes the manifest: `version: 1` and a list of `steps`"


@dataclass(frozen=True, slots=True)
class SpecSource:
    """What `resolve`'s spec options would say: files (absolute paths) and inline specs."""

    files: tuple[Path, ...] = ()
    requirements: tuple[Path, ...] = ()
    packages: tuple[str, ...] = ()
    pypi: tuple[str, ...] = ()
    python: str | None = None
    channels: tuple[str, ...] = ()
    virtual_packages: tuple[str, ...] = ()
    exclude_newer: str | None = None
    find_links: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a deployment: its environment is `spec` or `alias` (the other is None)."""

    name: str
    platforms: tuple[str, ...]
    spec: SpecSource | None = None
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    source: str  # the file read, or `<dict>` for one given as data
    name: str
    steps: tuple[Step, ...]


def read_manifest(path: Path) -> Manifest:
    """Parse and check the manifest at `path`; relative paths in it are relative to it."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidManifestError(
            f"failed to read manifest `{shown}`: {getattr(err, 'strerror', None) or err}",
            hint="give the path of a pre-deploy manifest (YAML)",
        ) from err
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{shown}:{mark.line + 1}" if mark is not None else shown
        raise InvalidManifestError(
            f"failed to read manifest `{where}`: invalid YAML: {err.problem or err}",
            hint="fix the YAML at that line",
        ) from err
    except yaml.YAMLError as err:
        raise InvalidManifestError(f"failed to read manifest `{shown}`: {err}") from err
    return parse_manifest(data, base=path.resolve().parent, source=shown)


def parse_manifest(data: Any, *, base: Path, source: str = "<dict>") -> Manifest:
    """Check a manifest given as data; `base` is where its relative paths start."""
    fail = _Failure(source)
    if not isinstance(data, Mapping):
        raise fail.at("", f"the manifest is a {_kind(data)}, not a mapping")
    fail.unknown_keys(data, _TOP_KEYS, "")
    if data.get("version") != MANIFEST_VERSION:
        found = "missing" if "version" not in data else f"`{data['version']}`"
        raise fail.at("", f"`version` is {found}; this envd reads version `{MANIFEST_VERSION}`")
    name = data.get("name", "")
    if not isinstance(name, str):
        raise fail.at("", f"`name` must be a string, not a {_kind(name)}")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise fail.at("", "`steps` must be a non-empty list of steps")
    parsed: list[Step] = []
    for index, step in enumerate(steps):
        parsed.append(_step(step, index, base, fail))
    seen: dict[str, int] = {}
    for index, step in enumerate(parsed):
        if step.name in seen:
            raise fail.at(
                _where(step.name, index), f"`name` repeats step {seen[step.name] + 1}'s name"
            )
        seen[step.name] = index
    return Manifest(source, name, tuple(parsed))


def _step(data: Any, index: int, base: Path, fail: _Failure) -> Step:
    if not isinstance(data, Mapping):
        raise fail.at(f"steps[{index}]", f"a step is a mapping, not a {_kind(data)}")
    name = data.get("name")
    if not isinstance(name, str) or not _STEP_NAME.match(name):
        shown = "missing" if name is None else f"`{name}`"
        raise fail.at(
            f"steps[{index}]",
            f"`name` is {shown}: a step's name is 1-128 letters, digits, `_`, `.` or `-`",
        )
    where = _where(name, index)
    fail.unknown_keys(data, _STEP_KEYS, where)
    platforms = _platforms(data.get("platforms"), where, fail)
    environment = data.get("environment")
    if not isinstance(environment, Mapping) or not environment:
        raise fail.at(where, "`environment` must be a mapping with a spec or an `alias`")
    fail.unknown_keys(environment, _ENVIRONMENT_KEYS, where, "environment.")
    if "alias" in environment:
        return Step(name, platforms, alias=_alias(environment, where, fail))
    return Step(name, platforms, spec=_spec(environment, base, where, fail))


def _platforms(value: Any, where: str, fail: _Failure) -> tuple[str, ...]:
    from envd.platforms import check_platform

    if not _is_strings(value) or not value:
        raise fail.at(where, "`platforms` must be a non-empty list, e.g. `[linux-64, osx-arm64]`")
    for i, platform in enumerate(value):
        try:
            check_platform(platform)
        except EnvdError as err:
            raise fail.at(where, f"`platforms[{i}]`: {err.message}", err.hint) from err
    return tuple(dict.fromkeys(value))


def _alias(environment: Mapping[str, Any], where: str, fail: _Failure) -> str:
    from envd.aliases import parse_alias

    others = sorted(k for k in environment if k != "alias")
    if others:
        raise fail.at(
            where,
            "`environment.alias` names an environment already resolved; it takes no "
            + ", ".join(f"`{k}`" for k in others),
            "give either `alias`, or a spec (`files`, `packages`, …) to resolve",
        )
    text = environment["alias"]
    if not isinstance(text, str):
        raise fail.at(where, f"`environment.alias` must be a string, not a {_kind(text)}")
    try:
        return str(parse_alias(text))
    except EnvdError as err:
        raise fail.at(where, f"`environment.alias`: {err.message}", err.hint) from err


def _spec(environment: Mapping[str, Any], base: Path, where: str, fail: _Failure) -> SpecSource:
    lists: dict[str, tuple[str, ...]] = {}
    for key in _LISTS:
        value = environment.get(key, [])
        if not _is_strings(value):
            raise fail.at(where, f"`environment.{key}` must be a list of strings")
        lists[key] = tuple(value)
    if not any(lists[k] for k in ("files", "requirements", "packages", "pypi")):
        raise fail.at(
            where,
            "`environment` asks for nothing: give `files`, `requirements`, `packages` or `pypi`, "
            "or an `alias`",
        )
    files = tuple(_existing(base, p, f"environment.files[{i}]", where, fail)
                  for i, p in enumerate(lists["files"]))  # fmt: skip
    requirements = tuple(_existing(base, p, f"environment.requirements[{i}]", where, fail)
                         for i, p in enumerate(lists["requirements"]))  # fmt: skip
    return SpecSource(
        files=files, requirements=requirements, packages=lists["packages"], pypi=lists["pypi"],
        python=_python(environment.get("python"), where, fail), channels=lists["channels"],
        virtual_packages=lists["virtual_packages"],
        exclude_newer=_moment(environment.get("exclude_newer"), where, fail),
        find_links=lists["find_links"],
    )  # fmt: skip


def _existing(base: Path, text: str, field: str, where: str, fail: _Failure) -> Path:
    path = base / Path(text).expanduser()
    if not path.is_file():
        raise fail.at(
            where,
            f"`{field}`: no file `{text}` (looked for `{path}`)",
            "paths in a manifest are relative to the manifest's folder",
        )
    return path


def _python(value: Any, where: str, fail: _Failure) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise fail.at(
            where,
            f'`environment.python` is the number `{value}`: quote it, e.g. `python: "3.10"`',
            "YAML reads an unquoted 3.10 as the number 3.1",
        )
    raise fail.at(where, f"`environment.python` must be a string, not a {_kind(value)}")


def _moment(value: Any, where: str, fail: _Failure) -> str | None:
    """A string, or the date/datetime YAML makes of an unquoted `2024-06-01`."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime.date):  # datetime is a date too
        return value.isoformat()
    raise fail.at(
        where, f"`environment.exclude_newer` must be a date or time, not a {_kind(value)}"
    )


def _is_strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _where(name: str, index: int) -> str:
    return f"step `{name}` (steps[{index}])"


def _kind(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


@dataclass(frozen=True, slots=True)
class _Failure:
    """Errors that name the manifest, the step and the field."""

    source: str

    def at(self, where: str, problem: str, hint: str | None = None) -> InvalidManifestError:
        place = f"{where}: " if where else ""
        return InvalidManifestError(
            f"failed to read manifest `{self.source}`: {place}{problem}", hint=hint or _SCHEMA_HINT
        )

    def unknown_keys(
        self, data: Mapping[str, Any], known: tuple[str, ...], where: str, prefix: str = ""
    ) -> None:
        unknown = [str(k) for k in data if k not in known]
        if unknown:
            raise self.at(
                where,
                f"unknown field `{prefix}{unknown[0]}`",
                "known fields: " + ", ".join(f"`{prefix}{k}`" for k in known),
            )
