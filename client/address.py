"""Coordinator addresses: `HOST:PORT` or `unix:PATH`, checked before any connection is tried,
and the plain-words cause when one cannot be reached."""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import socket
from dataclasses import dataclass

from envd.errors import ConfigError

# RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens.
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_PORT = re.compile(r"^[0-9]{1,5}$")
_HINT = "write `HOST:PORT` (e.g. `localhost:50051`, `[::1]:50051`) or `unix:PATH` (no scheme)"


@dataclass(frozen=True, slots=True)
class CoordinatorAddress:
    """A checked address: `target` is what gRPC dials; a TCP one has host and port, a unix
    socket a path."""

    target: str
    host: str = ""
    port: int = 0
    path: str = ""

    @property
    def is_unix(self) -> bool:
        return bool(self.path)


def parse_address(text: str, where: str = "") -> CoordinatorAddress:
    """`HOST:PORT`, `[IPV6]:PORT`, `unix:PATH` or `unix:///PATH`; anything else is refused
    (exit 2) quoting it and where it came from."""
    value = text.strip()
    if value.startswith("unix:"):
        path = value.removeprefix("unix:")
        path = "/" + path.removeprefix("//").lstrip("/") if path.startswith("//") else path
        if not path:
            raise _malformed(text, where, "the socket path is empty")
        return CoordinatorAddress(target=f"unix:{path}", path=path)
    if "://" in value:
        raise _malformed(text, where, f"`{value.split('://')[0]}://` URLs are not addresses")
    host, colon, port = value.rpartition(":")
    if not colon or not host:
        raise _malformed(text, where, "the port is missing")
    if not _PORT.match(port) or not 0 < int(port) < 65536:
        raise _malformed(text, where, f"`{port}` is not a port (1-65535)")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise _malformed(text, where, f"`{host}` is not an IPv6 address") from None
        return CoordinatorAddress(target=f"{host}:{port}", host=host[1:-1], port=int(port))
    if not all(_LABEL.match(label) for label in host.rstrip(".").split(".")):
        raise _malformed(text, where, f"`{host}` is not a host name or IP address")
    return CoordinatorAddress(target=f"{host}:{port}", host=host, port=int(port))


def _malformed(text: str, where: str, why: str) -> ConfigError:
    source = f" (from {where})" if where else ""
    return ConfigError(f"invalid coordinator address `{text}`{source}: {why}", hint=_HINT)


def unreachable_cause(address: CoordinatorAddress, timeout: float) -> str | None:
    """Why nothing answers at `address`, in plain words, found with one plain socket connect;
    None when the connect succeeds (then whatever listens there is not answering gRPC)."""
    try:
        if address.is_unix:
            if not os.path.exists(address.path):
                return f"no socket file at `{address.path}`"
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(address.path)
            return None
        try:
            infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            return "name not resolved"
        family, kind, proto, _, sockaddr = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
        return None
    except TimeoutError:
        return "timed out"
    except OSError as err:
        return _os_cause(err)


_CAUSES = {
    errno.ECONNREFUSED: "connection refused",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.EACCES: "permission denied",
    errno.ENOENT: "no such socket file",
    errno.ETIMEDOUT: "timed out",
}


def _os_cause(err: OSError) -> str:
    if err.errno in _CAUSES:
        return _CAUSES[err.errno]
    return (err.strerror or str(err)).lower()
