"""Client settings: flags over environment variables over the config file, and the home."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from envd.channels import DEFAULT_CHANNEL_ALIAS
from envd.config_file import config_path
from envd.config_file import read_config_file as read_file
from envd.errors import ConfigError

from .address import parse_address

_KEYS = {"coordinator", "store", "home", "channel_alias", "reattach_timeout", "token", "tls_ca",
         "use_latest"}  # fmt: skip
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
    # sent as `authorization: Bearer …` to a coordinator (ENVD_TOKEN, `token`)
    token: str | None = None
    # a PEM CA file: talk TLS to the coordinator, trusting it (--tls-ca, ENVD_TLS_CA, `tls_ca`)
    tls_ca: str | None = None
    tls_ca_source: str = ""
    # the default of `resolve --use-latest` (ENVD_USE_LATEST, `use_latest`), and where from
    use_latest: str = ""
    use_latest_source: str = ""

    @property
    def store_url(self) -> str:
        """The embedded default's store: `store` if set, else the home's `store/` folder."""
        return self.store or str(self.home / "store")

    @property
    def state_path(self) -> Path:
        return self.home / "state.sqlite"


def default_home(environ: Mapping[str, str]) -> tuple[Path, str]:
    """Per user, as uv and pixi keep theirs: `$XDG_DATA_HOME/envd`, else
    `~/.local/share/envd`; with where the answer came from."""
    if environ.get("XDG_DATA_HOME"):
        return Path(environ["XDG_DATA_HOME"]) / "envd", "XDG_DATA_HOME"
    return Path.home() / ".local" / "share" / "envd", "default"


def read_config_file(path: Path, explicit: bool) -> dict[str, str]:
    return read_file(path, explicit, _KEYS)


def load_config(
    *,
    coordinator_flag: str | None,
    environ: Mapping[str, str] | None = None,
    home_flag: str | None = None,
    tls_ca_flag: str | None = None,
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
    tls_ca, tls_ca_source = pick(tls_ca_flag, "ENVD_TLS_CA", "tls_ca")
    use_latest, use_latest_source = pick(None, "ENVD_USE_LATEST", "use_latest")
    return ClientConfig(
        coordinator=coordinator,
        store=pick(None, "ENVD_STORE", "store")[0],
        home=Path(os.path.abspath(home.expanduser())),
        channel_alias=pick(None, "ENVD_CHANNEL_ALIAS", "channel_alias")[0] or DEFAULT_CHANNEL_ALIAS,
        source=str(path) if file_values else "",
        home_source=home_source,
        reattach_timeout=_seconds(timeout_text, timeout_source),
        token=pick(None, "ENVD_TOKEN", "token")[0],
        tls_ca=tls_ca,
        tls_ca_source=tls_ca_source,
        use_latest=use_latest or "",
        use_latest_source=use_latest_source,
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
