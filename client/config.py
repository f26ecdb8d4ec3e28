"""Client settings: flags over environment variables over the config file."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from envd.channels import DEFAULT_CHANNEL_ALIAS
from envd.errors import ConfigError

_KEYS = {"coordinator", "store", "home", "channel_alias"}


@dataclass(frozen=True, slots=True)
class ClientConfig:
    coordinator: str | None
    store: str | None
    home: Path
    channel_alias: str
    source: str


def config_path(environ: Mapping[str, str]) -> Path:
    if environ.get("ENVD_CONFIG"):
        return Path(environ["ENVD_CONFIG"])
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "envd" / "config.toml"


def read_config_file(path: Path, explicit: bool) -> dict[str, str]:
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file `{path}` does not exist", hint="unset ENVD_CONFIG")
        return {}
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"failed to read config `{path}`: {err}") from err
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key `{unknown[0]}` in config `{path}`",
            hint="known keys: " + ", ".join(sorted(_KEYS)),
        )
    bad = [k for k, v in data.items() if not isinstance(v, str)]
    if bad:
        raise ConfigError(f"key `{bad[0]}` in config `{path}` must be a string")
    return {k: str(v) for k, v in data.items()}


def load_config(
    *, coordinator_flag: str | None, environ: Mapping[str, str] | None = None
) -> ClientConfig:
    env = os.environ if environ is None else environ
    path = config_path(env)
    file_values = read_config_file(path, explicit=bool(env.get("ENVD_CONFIG")))

    def pick(flag: str | None, env_key: str, key: str) -> str | None:
        return flag or env.get(env_key) or file_values.get(key)

    home = pick(None, "ENVD_HOME", "home") or ".envd"
    return ClientConfig(
        coordinator=pick(coordinator_flag, "ENVD_COORDINATOR", "coordinator"),
        store=pick(None, "ENVD_STORE", "store"),
        home=Path(home),
        channel_alias=pick(None, "ENVD_CHANNEL_ALIAS", "channel_alias") or DEFAULT_CHANNEL_ALIAS,
        source=str(path) if file_values else "",
    )
