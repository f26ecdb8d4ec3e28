"""The envd config file clients and agents read (`ENVD_CONFIG`, else
`$XDG_CONFIG_HOME/envd/config.toml`, else `~/.config/envd/config.toml`): string keys only."""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path

from envd.errors import ConfigError


def config_path(environ: Mapping[str, str]) -> Path:
    if environ.get("ENVD_CONFIG"):
        return Path(environ["ENVD_CONFIG"])
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "envd" / "config.toml"


def read_config_file(
    path: Path, explicit: bool, known: Collection[str] | None = None
) -> dict[str, str]:
    """The file's keys (each a string); `known`: refuse any other key. A missing file is
    empty unless it was named explicitly (`ENVD_CONFIG`)."""
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file `{path}` does not exist", hint="unset ENVD_CONFIG")
        return {}
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"failed to read config `{path}`: {err}") from err
    unknown = sorted(set(data) - set(known)) if known is not None else []
    if unknown:
        raise ConfigError(
            f"unknown key `{unknown[0]}` in config `{path}`",
            hint="known keys: " + ", ".join(sorted(known or ())),
        )
    bad = [k for k, v in data.items() if not isinstance(v, str)]
    if bad:
        raise ConfigError(f"key `{bad[0]}` in config `{path}` must be a string")
    return {k: str(v) for k, v in data.items()}
