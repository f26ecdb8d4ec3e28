"""Request bodies that are not valid protobuf: refused as INVALID_ARGUMENT with a clear
message, never a traceback and UNKNOWN/INTERNAL (grpc's answer when a deserializer raises)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from envd.errors import InvalidSpecError
from envd.wire import error_metadata, status_code


@dataclass(frozen=True, slots=True)
class Malformed:
    """Stands in for a message that failed to decode."""

    kind: str
    reason: str

    def error(self) -> InvalidSpecError:
        return InvalidSpecError(
            f"the request body is not a valid `{self.kind}` message: {self.reason}",
            hint="send envd.v1 protobuf messages (the envd client and agent do)",
        )


def decoder(message_class: Any) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        try:
            return message_class.FromString(data)
        except DecodeError as err:
            return Malformed(message_class.DESCRIPTOR.full_name, str(err) or "cannot parse")

    return decode


async def refuse(context: grpc.aio.ServicerContext, bad: Malformed) -> None:
    err = bad.error()
    await context.abort(status_code(err), err.message, error_metadata(err))


def guard_unary(behavior: Callable[[Any, Any], Awaitable[Any]]) -> Callable[..., Any]:
    async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, Malformed):
            await refuse(context, request)
        return await behavior(request, context)

    return run


def guard_stream(behavior: Callable[[Any, Any], AsyncIterator[Any]]) -> Callable[..., Any]:
    async def run(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        if isinstance(request, Malformed):
            await refuse(context, request)
        async for message in behavior(request, context):
            yield message

    return run
