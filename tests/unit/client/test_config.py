"""Client settings: flags over environment over the config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.client.config import load_config
from envd.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_precedence_flag_then_environment_then_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'coordinator = "file:1"\nstore = "s3://file/p"\nhome = "/h"\n')
    env = {"ENVD_CONFIG": str(path)}
    from_file = load_config(coordinator_flag=None, environ=env)
    assert (from_file.coordinator, from_file.store, from_file.home) == (
        "file:1",
        "s3://file/p",
        Path("/h"),
    )
    env |= {"ENVD_COORDINATOR": "env:2", "ENVD_STORE": "gs://env/p"}
    from_env = load_config(coordinator_flag=None, environ=env)
    assert (from_env.coordinator, from_env.store) == ("env:2", "gs://env/p")
    assert load_config(coordinator_flag="flag:3", environ=env).coordinator == "flag:3"


def test_defaults_without_any_setting(tmp_path: Path) -> None:
    config = load_config(coordinator_flag=None, environ={"XDG_CONFIG_HOME": str(tmp_path)})
    assert config.coordinator is None and config.store is None
    assert config.home == Path.home() / ".local" / "share" / "envd"
    assert config.channel_alias == "https://conda.anaconda.org"
    assert config.home_source == "default" and config.reattach_timeout == 120.0
    assert config.store_url == str(config.home / "store")
    assert config.state_path == config.home / "state.sqlite"


def test_home_flag_then_envd_home_then_file_then_xdg_data_home(tmp_path: Path) -> None:
    path = write(tmp_path, 'home = "/from-file"\n')
    env = {"XDG_CONFIG_HOME": str(tmp_path / "none"), "XDG_DATA_HOME": "/data"}
    assert load_config(coordinator_flag=None, environ=env).home == Path("/data/envd")
    env["ENVD_CONFIG"] = str(path)
    assert load_config(coordinator_flag=None, environ=env).home == Path("/from-file")
    env["ENVD_HOME"] = "/env-home"
    from_env = load_config(coordinator_flag=None, environ=env)
    assert (from_env.home, from_env.home_source) == (Path("/env-home"), "ENVD_HOME")
    flag = load_config(coordinator_flag=None, environ=env, home_flag=".envd")
    assert (flag.home, flag.home_source) == (Path.cwd() / ".envd", "--home")


@pytest.mark.parametrize(
    ("flag", "env", "message"),
    [
        ("http://foo", {}, "invalid coordinator address `http://foo` (from --coordinator): "
         "`http://` URLs are not addresses"),
        (None, {"ENVD_COORDINATOR": "host"}, "invalid coordinator address `host` (from "
         "ENVD_COORDINATOR): the port is missing"),
        (None, {"ENVD_REATTACH_TIMEOUT": "soon"}, "`soon` (from ENVD_REATTACH_TIMEOUT) is not a "
         "number of seconds"),
    ],
)  # fmt: skip
def test_bad_values_are_refused_naming_where_they_came_from(
    tmp_path: Path, flag: str | None, env: dict[str, str], message: str
) -> None:
    environ = {"XDG_CONFIG_HOME": str(tmp_path), **env}
    with pytest.raises(ConfigError) as info:
        load_config(coordinator_flag=flag, environ=environ)
    assert info.value.message == message


def test_reattach_timeout_from_the_environment(tmp_path: Path) -> None:
    environ = {"XDG_CONFIG_HOME": str(tmp_path), "ENVD_REATTACH_TIMEOUT": "2.5"}
    assert load_config(coordinator_flag=None, environ=environ).reattach_timeout == 2.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('coordinatr = "x"\n', "unknown key `coordinatr` in config"),
        ("coordinator = 5\n", "key `coordinator` in config `{path}` must be a string"),
        ("coordinator = \n", "failed to read config `{path}`"),
    ],
)
def test_bad_config_files_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(coordinator_flag=None, environ={"ENVD_CONFIG": str(path)})
    assert message.format(path=path) in info.value.message


def test_an_explicit_config_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(coordinator_flag=None, environ={"ENVD_CONFIG": str(missing)})
