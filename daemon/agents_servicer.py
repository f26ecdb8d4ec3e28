"""Thin gRPC servicer for `envd.v1.Agents`: one long-lived stream per connected agent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

import envd
from envd.errors import EnvdError, InvalidSpecError
from envd.v1 import agents_pb2, agents_pb2_grpc
from envd.wire import error_metadata, status_code

from .agent_registry import ConnectedAgent
from .agent_sessions import AgentSessions
from .settings import CoordinatorSettings

log = logging.getLogger("envd.daemon")
_STOP = agents_pb2.CoordinatorMessage()


class AgentsServicer(agents_pb2_grpc.AgentsServicer):  # type: ignore[misc]
    def __init__(
        self, sessions: AgentSessions, store_url: str, settings: CoordinatorSettings
    ) -> None:
        self.sessions = sessions
        self.store_url = store_url
        self.settings = settings

    async def Connect(
        self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[agents_pb2.CoordinatorMessage]:
        try:
            first = await anext(request_iterator)
            if not first.HasField("register"):
                raise InvalidSpecError("an agent stream must start with `register`")
            agent = self.sessions.register(first.register)
        except EnvdError as err:
            await context.abort(status_code(err), err.message, error_metadata(err))
            return
        except StopAsyncIteration:
            return
        yield agents_pb2.CoordinatorMessage(
            welcome=agents_pb2.Welcome(
                store_url=self.store_url,
                lease_ttl_ms=int(self.settings.lease_ttl * 1000),
                heartbeat_interval_ms=int(self.settings.heartbeat_interval * 1000),
                protocol_version=envd.PROTOCOL_VERSION,
                version=envd.__version__,
            )
        )
        reader = asyncio.create_task(self._read(agent, request_iterator))
        try:
            while True:
                message = await agent.outbox.get()
                if message is _STOP:
                    break
                yield message
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            self.sessions.disconnected(agent)

    async def _read(self, agent: ConnectedAgent, messages: AsyncIterator[Any]) -> None:
        try:
            async for message in messages:
                await self._handle(agent, message)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        except Exception:  # stream boundary: log, then end the session
            log.exception("agent=%s stream failed", agent.agent_id)
        finally:
            agent.outbox.put_nowait(_STOP)

    async def _handle(self, agent: ConnectedAgent, message: Any) -> None:
        kind = message.WhichOneof("body")
        if kind == "heartbeat":
            self.sessions.heartbeat(agent, message.heartbeat)
        elif kind == "progress":
            self.sessions.progress(agent, message.progress)
        elif kind == "result":
            await self.sessions.result(agent, message.result)
        elif kind == "failure":
            self.sessions.failure(agent, message.failure)
        else:
            log.warning("agent=%s sent unexpected `%s`", agent.agent_id, kind)
