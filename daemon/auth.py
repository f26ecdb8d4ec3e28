"""Access control: the `--tokens` file, who a call comes from, and the interceptor that refuses
a call before any servicer sees it unless its bearer token has the service's role.

The file holds `[[tokens]]` tables (`identity`, `role`, `namespaces`, `sha256`) and no secret:
a presented token is hashed and compared with every digest in constant time. Roles: `client`
and `admin` call `Environments`, `agent` calls `Agents`; health checks and reflection are open.
Namespaces (alias writes) are checked by the servicer through `current_principal()`.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import logging
import re
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import grpc

from envd.errors import ConfigError, EnvdError, PermissionDeniedError, UnauthenticatedError
from envd.tokens import bearer_token

from .interceptors import refusing_handler

log = logging.getLogger("envd.daemon")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KEYS = {"identity", "role", "namespaces", "sha256"}
_TOKEN_HINT = (
    "send a token the coordinator's `--tokens` file lists: ENVD_TOKEN, or `token` in the "
    "config file"
)
OPEN_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection")


class Role(StrEnum):
    CLIENT = "client"
    AGENT = "agent"
    ADMIN = "admin"


SERVICE_ROLES = {
    "envd.v1.Environments": (Role.CLIENT, Role.ADMIN),
    "envd.v1.Agents": (Role.AGENT,),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a call comes from: a token's identity, role and the namespaces it may write."""

    identity: str
    role: Role
    namespaces: tuple[str, ...] = ()

    def may_write(self, namespace: str) -> bool:
        return namespace in self.namespaces or "*" in self.namespaces

    def may_delete(self, namespace: str | None) -> bool:
        """An alias: its namespace or admin; an environment (no namespace): admin."""
        return self.role is Role.ADMIN or (namespace is not None and self.may_write(namespace))


_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "envd_principal", default=None
)


def current_principal() -> Principal | None:
    """The caller of the RPC being served; None when auth is off."""
    return _principal.get()


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    digest: bytes


def load_tokens(path: Path) -> tuple[_Entry, ...]:
    """Every `[[tokens]]` table of `path`, checked; ConfigError naming the entry otherwise."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"failed to read tokens file `{path}`: {err}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"failed to parse tokens file `{path}`: {err}") from err
    tables = data.get("tokens", [])
    if set(data) - {"tokens"} or not isinstance(tables, list):
        raise ConfigError(
            f"failed to read tokens file `{path}`: it holds only `[[tokens]]` tables",
            hint="each table has `identity`, `role`, `namespaces` and `sha256`",
        )
    entries = [_entry(path, i + 1, table) for i, table in enumerate(tables)]
    digests = [e.digest for e in entries]
    if len(set(digests)) != len(digests):
        raise ConfigError(f"failed to read tokens file `{path}`: two entries share a token")
    return tuple(entries)


def _entry(path: Path, number: int, table: Any) -> _Entry:
    def bad(why: str) -> ConfigError:
        return ConfigError(
            f"failed to read tokens file `{path}`: entry {number} {why}",
            hint="`envd-daemon hash-token` prints the `sha256` of a token read from stdin",
        )

    if not isinstance(table, dict):
        raise bad("is not a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise bad(f"has unknown key `{unknown[0]}` (known: {', '.join(sorted(_KEYS))})")
    identity, role = table.get("identity"), table.get("role")
    namespaces, digest = table.get("namespaces", []), table.get("sha256")
    if not isinstance(identity, str) or not identity.strip():
        raise bad("has no `identity`")
    if role not in set(Role):
        raise bad(f"has role `{role}`: use `client`, `agent` or `admin`")
    if not isinstance(namespaces, list) or not all(isinstance(n, str) for n in namespaces):
        raise bad("has `namespaces` that is not a list of strings")
    if not isinstance(digest, str) or not _SHA256.match(digest):
        raise bad("has no `sha256` (64 lowercase hex characters)")
    principal = Principal(identity.strip(), Role(role), tuple(namespaces))
    return _Entry(principal, bytes.fromhex(digest))


class Tokens:
    """The token table of one file, re-read by `reload()` (SIGHUP)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries = load_tokens(path)

    def __len__(self) -> int:
        return len(self._entries)

    def reload(self) -> bool:
        """Re-read the file; a file that fails to load keeps the table in use (logged)."""
        try:
            entries = load_tokens(self.path)
        except ConfigError as err:
            log.error("%s; keeping the %d token(s) loaded before", err.message, len(self))
            return False
        self._entries = entries
        log.info("reloaded %d token(s) from `%s`", len(entries), self.path)
        return True

    def lookup(self, token: str) -> Principal | None:
        """The principal of `token`; every digest is compared, in constant time."""
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for entry in self._entries:
            if hmac.compare_digest(entry.digest, digest):
                found = entry.principal
        return found


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuses a call without a known token (UNAUTHENTICATED) or whose token's role may not
    call the service (PERMISSION_DENIED); otherwise serves it with its principal set."""

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: grpc.HandlerCallDetails
    ) -> Any:
        service = details.method.strip("/").partition("/")[0]
        if service in OPEN_SERVICES:
            return await continuation(details)
        handler = await continuation(details)
        if handler is None:
            return None
        try:
            principal = self.check(details.method, bearer_token(details.invocation_metadata))
        except EnvdError as err:
            log.warning("refused %s: %s", details.method, err.message)
            return refusing_handler(handler, err)
        return _serving_as(handler, principal)

    def check(self, method: str, token: str | None) -> Principal:
        if token is None:
            raise UnauthenticatedError(
                f"`{method}` needs a token: the call carried no `authorization: Bearer` metadata",
                hint=_TOKEN_HINT,
            )
        principal = self.tokens.lookup(token)
        if principal is None:
            raise UnauthenticatedError(
                "the token is not one the coordinator knows (a typo, or revoked)",
                hint=_TOKEN_HINT,
            )
        service = method.strip("/").partition("/")[0]
        allowed = SERVICE_ROLES.get(service, ())
        if principal.role not in allowed:
            needs = " or ".join(f"`{r}`" for r in allowed) or "a role no token has"
            raise PermissionDeniedError(
                f"`{principal.identity}` (role `{principal.role}`) may not call `{method}`: "
                f"it needs role {needs}",
                hint="clients and agents use tokens of their own roles; ask an operator for one",
            )
        return principal


def require_namespace(namespace: str, *, deleting: bool = False) -> None:
    """Refuse an alias write (or deletion) the caller's token does not allow."""
    principal = current_principal()
    if principal is None:
        return
    allowed = principal.may_delete(namespace) if deleting else principal.may_write(namespace)
    if not allowed:
        owned = ", ".join(f"`{n}`" for n in principal.namespaces) or "none"
        verb = "delete in" if deleting else "write"
        raise PermissionDeniedError(
            f"`{principal.identity}` may not {verb} namespace `{namespace}`: its token's "
            f"namespaces are {owned}",
            hint="ask an operator to add the namespace to your token in the `--tokens` file",
        )


def require_admin(doing: str) -> None:
    principal = current_principal()
    if principal is not None and principal.role is not Role.ADMIN:
        raise PermissionDeniedError(
            f"`{principal.identity}` (role `{principal.role}`) may not {doing}: it needs role "
            "`admin`",
            hint="ask an operator to run it, or for an admin token",
        )


def _serving_as(handler: Any, principal: Principal) -> Any:
    """The same handler, with `current_principal()` set for the call it serves."""
    codecs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        unary = handler.unary_unary

        async def unary_unary(request: Any, context: Any) -> Any:
            _principal.set(principal)
            return await unary(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, **codecs)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _streaming(handler.unary_stream, principal), **codecs
        )
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(
            _streaming(handler.stream_stream, principal), **codecs
        )
    stream_unary = handler.stream_unary

    async def stream_in(requests: Any, context: Any) -> Any:
        _principal.set(principal)
        return await stream_unary(requests, context)

    return grpc.stream_unary_rpc_method_handler(stream_in, **codecs)


def _streaming(behavior: Callable[[Any, Any], AsyncIterator[Any]], principal: Principal) -> Any:
    async def run(request: Any, context: Any) -> AsyncIterator[Any]:
        _principal.set(principal)
        async for message in behavior(request, context):
            yield message

    return run
