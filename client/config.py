"""Client settings: flags over environment variables over the config file, and the home."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from envd.channels import DEFAULT_CHANNEL_ALIAS
from envd.errors import ConfigError

from .address import parse_address

_KEYS = {"coordinator", "store", "home", "channel_alias", "reattach_timeout"}
DEFAULT_REATTACH_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class ClientConfig:
    coordinator: str | None
    store: str | None
    home: Path
    channel_alias: str
    source: str
    home_source: str = "default"
    reattach_timeout: float = DEFAULT_REATTACH_TIMEOUT

    @property
    def store_url(self) -> str:
        """The embedded default's store: `store` if set, else the home's `store/` folder."""
        return self.store or str(self.home / "store")

    @property
    def state_path(self) -> Path:
        return self.home / "state.sqlite"


def config_path(environ: Mapping[str, str]) -> Path:
    if environ.get("ENVD_CONFIG"):
        return Path(environ["ENVD_CONFIG"])
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "envd" / "config.toml"


def default_home(environ: Mapping[str, str]) -> tuple[Path, str]:
    """Per user, as uv and pixi keep theirs: `$XDG_DATA_HOME/envd`, else
    `~/.local/share/envd`; with where the answer came from."""
    if environ.get("XDG_DATA_HOME"):
        return Path(environ["XDG_DATA_HOME"]) / "envd", "XDG_DATA_HOME"
    return Path.home() / ".local" / "share" / "envd", "default"


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
    *,
    coordinator_flag: str | None,
    environ: Mapping[str, str] | None = None,
    home_flag: str | None = None,
) -> ClientConfig:
    env = os.environ if environ is None else environ
    path = config_path(env)
    file_values = read_config_file(path, explicit=bool(env.get("ENVD_CONFIG")))

    def pick(flag: str | None, env_key: str, key: str) -> tuple[str | None, str]:
        for value, where in (
            (flag, f"--{key.replace('_', '-')}"),
            (env.get(env_key), env_key),
            (file_values.get(key), f"`{key}` in `{path}`"),
        ):
            if value:
                return value, where
        return None, ""

    coordinator, where = pick(coordinator_flag, "ENVD_COORDINATOR", "coordinator")
    if coordinator is not None:
        parse_address(coordinator, where)  # malformed: refused before anything else runs
    home_text, home_source = pick(home_flag, "ENVD_HOME", "home")
    home, home_source = (Path(home_text), home_source) if home_text else default_home(env)
    timeout_text, timeout_source = pick(None, "ENVD_REATTACH_TIMEOUT", "reattach_timeout")
    return ClientConfig(
        coordinator=coordinator,
        store=pick(None, "ENVD_STORE", "store")[0],
        home=Path(os.path.abspath(home.expanduser())),
        channel_alias=pick(None, "ENVD_CHANNEL_ALIAS", "channel_alias")[0] or DEFAULT_CHANNEL_ALIAS,
        source=str(path) if file_values else "",
        home_source=home_source,
        reattach_timeout=_seconds(timeout_text, timeout_source),
    )


def _seconds(text: str | None, where: str) -> float:
    if text is None:
        return DEFAULT_REATTACH_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(f"`{text}` (from {where}) is not a number of seconds")
    return value
