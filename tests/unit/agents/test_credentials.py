"""Channel credentials (envd.agents.credentials): tokens by host and port, over https unless
the origin is marked plain-http; the existing `HOST=TOKEN` format keeps working."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.agents.credentials import ChannelCredentials, origin_key
from envd.errors import ConfigError


def test_credentials_come_from_the_environment_and_never_show() -> None:
    env = {"ENVD_CHANNEL_TOKEN": "conda.example.com=abc, Repo.Corp:8443=def", "NETRC": "/n"}
    credentials = ChannelCredentials.from_environment(env)
    assert credentials.tokens == {"conda.example.com": "abc", "repo.corp:8443": "def"}
    assert credentials.netrc_path == Path("/n")
    assert "abc" not in repr(credentials) and "def" not in repr(credentials)
    assert credentials.authorization("https://conda.example.com/c/noarch/x.conda") == "Bearer abc"
    assert credentials.authorization("https://conda.anaconda.org/c/noarch/x.conda") is None
    with pytest.raises(ConfigError, match="an entry is not `HOST=TOKEN`"):
        ChannelCredentials.from_environment({"ENVD_CHANNEL_TOKEN": "abc"})


@pytest.mark.parametrize(
    ("url", "header"),
    [
        ("https://conda.example.com/c/x.conda", "Bearer abc"),
        ("https://conda.example.com:443/c/x.conda", "Bearer abc"),
        ("https://CONDA.example.com/c/x.conda", "Bearer abc"),
        ("https://conda.example.com:8443/c/x.conda", None),  # another port of the host
        ("http://conda.example.com/c/x.conda", None),  # plain http, not marked
        ("https://repo.corp:8443/c/x.conda", "Bearer def"),
        ("https://repo.corp/c/x.conda", None),  # the token is for port 8443 only
        ("http://repo.corp:8443/c/x.conda", None),
        ("http://mirror.lan:8080/c/x.conda", "Bearer ghi"),  # marked plain-http
        ("http://mirror.lan/c/x.conda", None),
        ("http://[::1]:8000/c/x.conda", "Bearer v6"),
        ("ftp://conda.example.com/c/x.conda", None),
        ("file:///srv/c/x.conda", None),
    ],
)
def test_a_token_reaches_its_origin_only(url: str, header: str | None) -> None:
    env = {
        "ENVD_CHANNEL_TOKEN": "conda.example.com=abc,repo.corp:8443=def,mirror.lan:8080=ghi,"
        "[::1]:8000=v6",
        "ENVD_PLAIN_HTTP_HOSTS": "mirror.lan:8080",
        "NETRC": "/nonexistent",
    }
    credentials = ChannelCredentials.from_environment(env, plain_http=["[::1]:8000"])
    assert credentials.authorization(url) == header


def test_a_bare_plain_http_mark_is_port_80_and_its_bare_token_too() -> None:
    env = {"ENVD_CHANNEL_TOKEN": "mirror.lan=abc", "NETRC": "/nonexistent"}
    credentials = ChannelCredentials.from_environment(env, plain_http=["mirror.lan"])
    assert credentials.authorization("http://mirror.lan/c/x.conda") == "Bearer abc"
    assert credentials.authorization("http://mirror.lan:8080/c/x.conda") is None
    assert credentials.authorization("https://mirror.lan/c/x.conda") == "Bearer abc"


def test_netrc_goes_over_https_or_to_a_marked_origin_only(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine repo.corp login alice password pa55\n")
    netrc.chmod(0o600)
    credentials = ChannelCredentials({}, netrc, frozenset({"repo.corp:8080"}))
    assert credentials.authorization("https://repo.corp/c/x.conda") is not None
    assert credentials.authorization("http://repo.corp/c/x.conda") is None
    assert credentials.authorization("http://repo.corp:8080/c/x.conda") is not None


@pytest.mark.parametrize("text", ["host:port", "host:0", "user@host", "host/path", ":80", ""])
def test_an_origin_that_is_not_host_and_port_is_refused(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        origin_key(text, "--plain-http-host")
    assert info.value.message == (
        f"failed to read `--plain-http-host`: `{text}` is not `HOST` or `HOST:PORT`"
    )


def test_origins_are_lower_case_with_ipv6_unbracketed() -> None:
    assert origin_key(" Repo.Corp:8443 ", "x") == "repo.corp:8443"
    assert origin_key("[::1]:8080", "x") == "::1:8080"
    assert origin_key("conda.example.com", "x") == "conda.example.com"
