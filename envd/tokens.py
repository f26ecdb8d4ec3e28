"""Bearer tokens and TLS trust as clients and agents send them: the `authorization` metadata
added to every call by an interceptor, the digest a daemon's token file holds, the CA file."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import grpc

from envd.errors import ConfigError

AUTHORIZATION_KEY = "authorization"
BEARER = "Bearer "


def hash_token(token: str) -> str:
    """The hex sha256 the daemon's `--tokens` file holds for `token`."""
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(metadata: Any) -> str | None:
    """The token of a call's `authorization: Bearer …` metadata, or None."""
    for key, value in metadata or ():
        if key == AUTHORIZATION_KEY and isinstance(value, str) and value.startswith(BEARER):
            return value[len(BEARER) :].strip() or None
    return None


def channel_credentials(ca_file: str | None, where: str) -> grpc.ChannelCredentials | None:
    """TLS trusting the CA in `ca_file` (PEM); None: plaintext."""
    if not ca_file:
        return None
    try:
        return grpc.ssl_channel_credentials(root_certificates=Path(ca_file).read_bytes())
    except OSError as err:
        raise ConfigError(
            f"failed to read the TLS CA file `{ca_file}` (from {where}): {err.strerror or err}",
            hint="give a PEM file with the CA that signed the coordinator's certificate",
        ) from err


class _Details(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class _CallDetails(_Details, grpc.ClientCallDetails):  # type: ignore[misc]
    pass


def _with_token(metadata: Any, token: str) -> list[tuple[str, str]]:
    return [*(metadata or ()), (AUTHORIZATION_KEY, f"{BEARER}{token}")]


class TokenInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
):
    """Adds the bearer token to every call of a blocking channel (the client)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def _details(self, details: Any) -> _CallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            _with_token(details.metadata, self._token),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Iterator[Any]:
        return continuation(self._details(details), request)  # type: ignore[no-any-return]


class AioTokenInterceptor(grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    """Adds the bearer token to the agent's stream (an asyncio channel)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_stream_stream(
        self, continuation: Callable[..., Any], details: Any, request_iterator: AsyncIterable[Any]
    ) -> Any:
        new = grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            _with_token(details.metadata, self._token),
            details.credentials,
            details.wait_for_ready,
        )
        return await continuation(new, request_iterator)
