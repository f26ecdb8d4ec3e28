"""Server interceptors for concerns every method shares (the protocol-version check here;
auth and metrics plug in beside it through `start_daemon(interceptors=...)`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

import envd
from envd.errors import EnvdError, IncompatibleVersionError
from envd.wire import PROTOCOL_METADATA_KEY, VERSION_METADATA_KEY, error_metadata, status_code

log = logging.getLogger("envd.daemon")


def check_protocol(protocol: str | None, version: str | None, who: str) -> None:
    """Refuse a peer that speaks another protocol version (no version: an old peer that did
    not say; the message-level checks decide)."""
    if protocol is None or protocol == str(envd.PROTOCOL_VERSION):
        return
    raise IncompatibleVersionError(
        f"{who} speaks protocol {protocol} (envd {version}); this coordinator speaks "
        f"{envd.PROTOCOL_VERSION} (envd {envd.__version__})",
        hint="run the same envd release on the coordinator, its agents and clients",
    )


class ProtocolVersionInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Checks the `envd-protocol` metadata of every call before the servicer sees it."""

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        protocol = version = None
        for key, value in details.invocation_metadata or ():
            if key == PROTOCOL_METADATA_KEY:
                protocol = str(value)
            elif key == VERSION_METADATA_KEY:
                version = str(value)
        try:
            check_protocol(protocol, version, "client")
        except EnvdError as err:
            log.info("refused %s: %s", details.method, err.message)
            return refusing_handler(await continuation(details), err)
        return await continuation(details)


def refusing_handler(handler: Any, err: EnvdError) -> Any:
    """A handler of the same shape as `handler` that ends every call with `err`."""
    if handler is None:
        return None

    async def abort(context: grpc.aio.ServicerContext) -> None:
        await context.abort(status_code(err), err.message, error_metadata(err))

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await abort(context)

    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await abort(context)
        yield None  # pragma: no cover - abort raises

    codecs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(streaming, **codecs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(unary, **codecs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(streaming, **codecs)
    return grpc.unary_unary_rpc_method_handler(unary, **codecs)
