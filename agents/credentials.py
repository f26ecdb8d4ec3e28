"""Credentials for private channels: bearer tokens by host and port (`ENVD_CHANNEL_TOKEN`) and
netrc logins by host, sent only over https unless the operator marks an origin as plain-http.

Specs name arbitrary channel URLs, so a credential goes only where it was meant to: a token
for `HOST` reaches `https://HOST` (port 443) and nothing else — not another port of that host,
not plain http — unless the operator says so (`HOST:PORT=TOKEN`, `--plain-http-host`).
"""

from __future__ import annotations

import logging
import netrc
import os
from base64 import b64encode
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from envd.errors import ConfigError

log = logging.getLogger("envd.agent")
TOKEN_ENV = "ENVD_CHANNEL_TOKEN"
PLAIN_HTTP_ENV = "ENVD_PLAIN_HTTP_HOSTS"
DEFAULT_PORTS = {"https": 443, "http": 80}


def origin_key(text: str, source: str) -> str:
    """`HOST` or `HOST:PORT` (an IPv6 host in brackets) as a lookup key: the host in lower
    case, then `:PORT` when one is given."""
    value = text.strip().lower()
    parts = urlsplit(f"//{value}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port == -1 or parts.path or "@" in value or port == 0:
        raise ConfigError(
            f"failed to read `{source}`: `{text.strip()}` is not `HOST` or `HOST:PORT`",
            hint="e.g. `conda.example.com`, `conda.example.com:8443` or `[::1]:8080`",
        )
    return parts.hostname if port is None else f"{parts.hostname}:{port}"


@dataclass(frozen=True, slots=True)
class ChannelCredentials:
    """Bearer tokens by origin, a netrc file for basic auth (by host), and the origins that may
    receive credentials over plain http.

    A token keyed `HOST` is for the scheme's default port (443; 80 over a plain-http origin),
    one keyed `HOST:PORT` for that port; a `HOST:PORT` entry wins. A plain-http mark `HOST`
    means port 80. netrc entries name a host only, so they serve every port of it, and also
    only over https or a plain-http origin."""

    tokens: Mapping[str, str] = field(default_factory=dict, repr=False)
    netrc_path: Path | None = None
    plain_http: frozenset[str] = frozenset()

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str], plain_http: Iterable[str] = ()
    ) -> ChannelCredentials:
        """`ENVD_CHANNEL_TOKEN` is `HOST[:PORT]=TOKEN[,…]`; `ENVD_PLAIN_HTTP_HOSTS` and
        `plain_http` (the agent's `--plain-http-host`) are `HOST[:PORT]`; the netrc file is
        `$NETRC` or `~/.netrc`."""
        tokens: dict[str, str] = {}
        for entry in _entries(environ.get(TOKEN_ENV, "")):
            host, _, token = entry.partition("=")
            if not host.strip() or not token.strip():
                raise ConfigError(
                    f"failed to read `{TOKEN_ENV}`: an entry is not `HOST=TOKEN`",
                    hint="name the host each token is for, e.g. `conda.example.com=TOKEN`",
                )
            tokens[origin_key(host, TOKEN_ENV)] = token.strip()
        marks = [
            *(origin_key(m, PLAIN_HTTP_ENV) for m in _entries(environ.get(PLAIN_HTTP_ENV, "")))
        ]
        marks += [origin_key(m, "--plain-http-host") for m in plain_http]
        path = environ.get("NETRC") or os.path.expanduser("~/.netrc")
        return cls(tokens, Path(path), frozenset(marks))

    def authorization(self, url: str) -> str | None:
        """The `Authorization` header value for `url`, or None: nothing for a scheme other
        than https, or http to an origin marked plain-http."""
        origin = self._origin(url)
        if origin is None:
            return None
        scheme, host, port = origin
        token = self.tokens.get(f"{host}:{port}")
        if token is None and port == DEFAULT_PORTS[scheme]:
            token = self.tokens.get(host)
        if token:
            return f"Bearer {token}"
        return self._netrc(host)

    def _origin(self, url: str) -> tuple[str, str, int] | None:
        """`(scheme, host, port)` of a URL credentials may go to: https, or http to an origin
        marked plain-http; None for any other scheme, a port that is not one, or plain http."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except (KeyError, ValueError):
            return None  # not http(s), or a port that is not one
        if scheme == "http" and not self.is_plain_http(host, port):
            return None
        return scheme, host, port

    def is_plain_http(self, host: str, port: int) -> bool:
        """Whether the operator lets credentials go to `http://host:port`."""
        return f"{host}:{port}" in self.plain_http or (port == 80 and host in self.plain_http)

    def _netrc(self, host: str) -> str | None:
        found = self._login(host)
        if found is None:
            return None
        login, password = found
        return "Basic " + b64encode(f"{login}:{password}".encode()).decode()

    def _login(self, host: str) -> tuple[str, str] | None:
        if self.netrc_path is None or not self.netrc_path.is_file():
            return None
        try:
            found = netrc.netrc(str(self.netrc_path)).authenticators(host)
        except (netrc.NetrcParseError, OSError) as err:
            log.warning("ignoring netrc `%s`: %s", self.netrc_path, type(err).__name__)
            return None
        if found is None:
            return None
        login, _, password = found
        return login, password or ""

    def write_index_netrc(self, urls: Iterable[str], path: Path) -> Path | None:
        """For uv: a netrc file (mode 0600) holding only the agent's netrc logins for the hosts
        of `urls` (PyPI indexes) that may receive credentials — https, or an origin marked
        plain-http, as for channels. None when no URL gets one: uv then gets no netrc at all.
        Specs never carry these logins (envd.spec refuses URLs with credentials)."""
        entries: dict[str, tuple[str, str]] = {}
        for url in urls:
            origin = self._origin(url)
            if origin is None:
                continue
            _, host, _ = origin
            found = self._login(host)
            if found is not None and not any(c.isspace() for c in "".join(found)):
                entries[host] = found
        if not entries:
            return None
        text = "".join(f"machine {h} login {u} password {p}\n" for h, (u, p) in entries.items())
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(text)
        return path


def _entries(text: str) -> list[str]:
    return [entry for entry in (e.strip() for e in text.split(",")) if entry]
