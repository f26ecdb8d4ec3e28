"""Server interceptors for concerns every method shares: the protocol-version check and
metrics (auth plugs in beside them through `start_daemon(interceptors=...)`)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

import envd
from envd.errors import EnvdError, IncompatibleVersionError
from envd.v1 import environments_pb2
from envd.wire import (
    ERROR_METADATA_KEY,
    PROTOCOL_METADATA_KEY,
    VERSION_METADATA_KEY,
    error_metadata,
    status_code,
)

from .metrics import DaemonMetrics

log = logging.getLogger("envd.daemon")
Behavior = Callable[[Any, grpc.aio.ServicerContext], Any]
OnMessage = Callable[[Any, float], None]
_EVENT_METHODS = ("/envd.v1.Environments/Resolve", "/envd.v1.Environments/Wait")
_CONNECT = "/envd.v1.Agents/Connect"
_CODE_NAMES = {code: code.name for code in grpc.StatusCode}  # Enum's `.name` is a slow property
_OUTCOMES: dict[int, str] = {
    environments_pb2.OUTCOME_CACHE_HIT: "cache_hit",
    environments_pb2.OUTCOME_DEDUP: "dedup",
    environments_pb2.OUTCOME_RESOLVED: "resolved",
}


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


@dataclass(frozen=True, slots=True)
class _Method:
    """What a method's calls are counted under, worked out once per method."""

    key: tuple[str, str]  # (service, method)
    on_message: OnMessage | None


class MetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Counts every call (started, ended by status code, duration) and the answers each
    Resolve or Wait stream carries (`envd_requests_total` by outcome and platform), and the
    revocations sent on agent streams. Put it first, so it also sees the calls that the
    interceptors after it refuse."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        self.metrics = metrics
        self._methods: dict[str, _Method] = {}
        # the wrapper of the handler last seen per method: the same each call, unless an
        # interceptor after this one makes a handler per call (auth does: its principal)
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(details)
        if handler is None:  # no such method: grpc answers UNIMPLEMENTED, nothing to count
            return None
        found = self._wrapped.get(details.method)
        if found is not None and found[0] is handler:
            return found[1]
        method = self._methods.get(details.method)
        if method is None:
            method = self._methods[details.method] = self._method(details.method)
        wrapped = self._wrap(method, handler)
        self._wrapped[details.method] = (handler, wrapped)
        return wrapped

    def _method(self, name: str) -> _Method:
        service, _, method_name = name.lstrip("/").rpartition("/")
        on_message = (
            self._event if name in _EVENT_METHODS else self._revoked if name == _CONNECT else None
        )
        return _Method((service, method_name), on_message)

    def _wrap(self, method: _Method, handler: Any) -> Any:
        codecs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.response_streaming:
            make = (grpc.stream_stream_rpc_method_handler if handler.request_streaming
                    else grpc.unary_stream_rpc_method_handler)  # fmt: skip
            inner = handler.stream_stream or handler.unary_stream
            return make(self._streaming(method, inner), **codecs)
        make = (grpc.stream_unary_rpc_method_handler if handler.request_streaming
                else grpc.unary_unary_rpc_method_handler)  # fmt: skip
        return make(self._unary(method, handler.stream_unary or handler.unary_unary), **codecs)

    def _unary(self, method: _Method, inner: Behavior) -> Behavior:
        async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            self.metrics.grpc_started.inc(method.key)
            error: BaseException | None = None
            try:
                return await inner(request, context)
            except BaseException as err:
                error = err
                raise
            finally:
                self._ended(method, context, error, started)

        return behavior

    def _streaming(self, method: _Method, inner: Behavior) -> Behavior:
        async def behavior(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = time.perf_counter()
            self.metrics.grpc_started.inc(method.key)
            error: BaseException | None = None
            responses = inner(request, context)
            try:
                async for message in responses:
                    if method.on_message is not None:
                        method.on_message(message, started)
                    yield message
            except BaseException as err:
                error = err
                await responses.aclose()  # its own cleanup now, not when collected
                raise
            finally:
                self._ended(method, context, error, started)

        return behavior

    def _ended(
        self, method: _Method, context: grpc.aio.ServicerContext, error: BaseException | None,
        started: float,
    ) -> None:  # fmt: skip
        code = context.code()  # set by abort() or set_code()
        if code is None:
            code = (grpc.StatusCode.OK if error is None
                    else grpc.StatusCode.CANCELLED if isinstance(error, asyncio.CancelledError | GeneratorExit)
                    else grpc.StatusCode.UNKNOWN)  # fmt: skip
        name = _CODE_NAMES.get(code, "UNKNOWN")
        self.metrics.grpc_handled.inc((*method.key, name))
        self.metrics.grpc_seconds.observe(method.key, time.perf_counter() - started)
        if code is not grpc.StatusCode.OK:
            self.metrics.count_error(_reference(context), name)

    def _event(self, message: Any, started: float) -> None:
        """A Resolve or Wait answer; its platform's last one counts the request."""
        if isinstance(message, bytes):  # the cache-hit fast path sends answers encoded
            platform, stage, outcome_value = _event_head(message)
        else:
            platform, stage, outcome_value = message.platform, message.stage, message.outcome
        if stage == environments_pb2.STAGE_DONE:
            outcome = _OUTCOMES.get(outcome_value, "resolved")
        elif stage == environments_pb2.STAGE_FAILED:
            outcome = "failed"
        else:
            return
        key = (outcome, platform)
        self.metrics.requests.inc(key)
        self.metrics.request_seconds.observe(key, time.perf_counter() - started)

    def _revoked(self, message: Any, started: float) -> None:
        if message.WhichOneof("body") == "revoked":
            self.metrics.revocations.inc()


def _event_head(data: bytes) -> tuple[str, int, int]:
    """(platform, stage, outcome) of an encoded `ResolveEvent`, read from its fields 1-5 alone
    (protobuf writes fields in number order, and those come before the description: a cache
    hit's answer is tens of KB, not to be copied for three values)."""
    platform, stage, outcome, at, size = "", 0, 0, 0, len(data)
    while at < size:
        tag = data[at]
        if tag >= 0x80 or tag >> 3 > 5:  # past the head (one-byte tags are fields 1-15)
            break
        value = data[at + 1]
        if value < 0x80:  # a one-byte varint: every value and length in a head but rare ones
            at += 2
        else:
            value, at = _varint(data, at + 1)
        if tag & 7 == 2:  # length-delimited: req_id, platform, job_id
            if tag == 0x12:
                platform = data[at : at + value].decode()
            at += value
        elif tag & 7 != 0:  # not what envd.v1 says: read it the slow way
            event = environments_pb2.ResolveEvent.FromString(data)
            return event.platform, event.stage, event.outcome
        elif tag == 0x20:
            stage = value
        elif tag == 0x28:
            outcome = value
    return platform, stage, outcome


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            return value, at
        shift += 7


def _reference(context: grpc.aio.ServicerContext) -> str:
    """The envd error reference a call ended with (`envd-error-bin`), or ""."""
    for key, value in context.trailing_metadata() or ():
        if key == ERROR_METADATA_KEY:
            try:
                return str(json.loads(value).get("reference", ""))
            except (ValueError, AttributeError):
                return ""
    return ""
