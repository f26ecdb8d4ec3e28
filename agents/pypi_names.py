"""The PyPI names a conda package provides: a user file, then grayskull's table, then its own name."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from envd.errors import ConfigError

GRAYSKULL_RESOURCE = "grayskull_pypi_mapping.json"  # provenance: envd/data/SOURCES.md
_PYTHON = "python"
_DEP_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


class PypiNames:
    """Which PyPI distributions a conda record provides, in this order:

    1. the user's file (`--pypi-name-map FILE`): conda name → PyPI name, or `null` for "no PyPI
       distribution" (a conda `cmake` that should not hold PyPI's `cmake`);
    2. the grayskull table conda-forge's tools use (12k python packages; read once, lazily);
    3. the conda name itself — only for a record that depends on `python`, since a conda name
       without a python dependency is a library or a tool (`zstd`, `openssl`, `tk`) whose PyPI
       namesake (a binding, another project) it does not provide."""

    def __init__(self, user: Mapping[str, str | None] | None = None) -> None:
        self.user = {name.lower(): value for name, value in (user or {}).items()}

    def provided(self, conda_name: str, depends: Sequence[str]) -> tuple[str, ...]:
        """The canonical PyPI names the record provides (none, one, or a few)."""
        name = conda_name.lower()
        if name in self.user:
            chosen = self.user[name]
            return () if chosen is None else (str(canonicalize_name(chosen)),)
        mapped = grayskull_table().get(name)
        if mapped is not None:
            return mapped
        if any(_dep_name(dep) == _PYTHON for dep in depends):
            return (str(canonicalize_name(name)),)
        return ()


@cache
def grayskull_table() -> dict[str, tuple[str, ...]]:
    """conda name → the canonical PyPI names it provides, from the packaged grayskull mapping
    (keyed by PyPI name there; a few conda names, such as `opencv`, provide several)."""
    text = resources.files("envd.data").joinpath(GRAYSKULL_RESOURCE).read_text("utf-8")
    table: dict[str, set[str]] = {}
    for entry in json.loads(text).values():
        table.setdefault(entry["conda_name"].lower(), set()).add(
            str(canonicalize_name(entry["pypi_name"]))
        )
    return {conda: tuple(sorted(names)) for conda, names in table.items()}


def read_name_map(path: Path) -> dict[str, str | None]:
    """The user's mapping file: a JSON object of conda name → PyPI name (or `null`)."""
    try:
        doc: Any = json.loads(path.read_text("utf-8"))
    except OSError as err:
        raise ConfigError(
            f"failed to read `--pypi-name-map` `{path}`: {err.strerror or err}",
            hint="pass a readable JSON file",
        ) from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(
            f"failed to read `--pypi-name-map` `{path}`: not JSON: {err}",
            hint='write a JSON object such as `{"pytorch": "torch", "cmake": null}`',
        ) from err
    if not isinstance(doc, dict):
        raise ConfigError(
            f"failed to read `--pypi-name-map` `{path}`: it is a JSON {type(doc).__name__}, "
            "not an object of conda name → PyPI name",
            hint='write a JSON object such as `{"pytorch": "torch", "cmake": null}`',
        )
    for conda, pypi in doc.items():
        if not _is_name(conda) or not (pypi is None or (isinstance(pypi, str) and _is_name(pypi))):
            raise ConfigError(
                f"failed to read `--pypi-name-map` `{path}`: entry `{conda}`: "
                f"`{json.dumps(pypi)}` is not a package name",
                hint="map each conda name to a PyPI project name, or to `null` for none",
            )
    return doc


def _is_name(text: str) -> bool:
    return bool(text) and set(text.lower()) <= _NAME_CHARS and text[0].isalnum()


def _dep_name(depend: str) -> str:
    """The package a conda dependency names: `python >=3.9,<3.10.0a0` → `python`."""
    match = _DEP_NAME.match(depend.strip())
    return match[0].lower() if match else ""
