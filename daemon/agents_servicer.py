"""Thin gRPC servicer for `envd.v1.Agents`: one long-lived stream per connected agent; it
decodes agent messages into domain calls and encodes the domain messages sent back."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

import envd
from envd.errors import EnvdError, InvalidSpecError
from envd.platforms import check_platform
from envd.v1 import agents_pb2, agents_pb2_grpc, common_pb2
from envd.wire import error_from_pb, error_metadata, stage_from_pb, status_code

from .agent_registry import AssignJob, CloseSession, ConnectedAgent, RevokeLease, ToAgent
from .agent_sessions import AgentSessions, Registration
from .decoding import Malformed, decoder
from .interceptors import check_protocol
from .settings import CoordinatorSettings

log = logging.getLogger("envd.daemon")


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
            if isinstance(first, Malformed):
                raise first.error()
            if not first.HasField("register"):
                raise InvalidSpecError("an agent stream must start with `register`")
            agent = await self.sessions.register(_registration(first.register))
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
                if isinstance(message, CloseSession):
                    break
                yield _encode(message)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            self.sessions.disconnected(agent)

    async def _read(self, agent: ConnectedAgent, messages: AsyncIterator[Any]) -> None:
        reason = "agent closed the stream"
        try:
            async for message in messages:
                await self._handle(agent, message)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            reason = "stream broken"
        except EnvdError as err:
            reason = err.message
            log.warning("agent=%s refused: %s", agent.agent_id, err.message)
        except Exception:  # stream boundary: log, then end the session
            reason = "stream failed"
            log.exception("agent=%s stream failed", agent.agent_id)
        finally:
            agent.send(CloseSession(reason))

    async def _handle(self, agent: ConnectedAgent, message: Any) -> None:
        if isinstance(message, Malformed):
            raise message.error()
        kind = message.WhichOneof("body")
        if kind == "heartbeat":
            await self.sessions.heartbeat(agent, list(message.heartbeat.lease_ids))
        elif kind == "progress":
            body = message.progress
            await self.sessions.progress(
                agent, body.lease_id, stage_from_pb(body.stage), body.message
            )
        elif kind == "result":
            await self.sessions.result(agent, message.result.lease_id, message.result.full_id)
        elif kind == "failure":
            body = message.failure
            await self.sessions.failure(agent, body.lease_id, error_from_pb(body.error))
        elif kind == "release":
            body = message.release
            await self.sessions.release(
                agent,
                body.lease_id,
                body.reason,
                _native_builds(body.native_builds),
                _python(body.native_python) if body.native_python else None,
            )
        else:
            log.warning("agent=%s sent unexpected `%s`", agent.agent_id, kind)


def add_agents_servicer(servicer: AgentsServicer, server: grpc.aio.Server) -> None:
    """The generated registration, with agent messages that may not decode."""
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.Connect,
        decoder(agents_pb2.AgentMessage),
        agents_pb2.CoordinatorMessage.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("envd.v1.Agents", {"Connect": handler}),)
    )


def _registration(message: agents_pb2.Register) -> Registration:
    check_protocol(str(message.protocol_version), message.version, f"agent `{message.agent_id}`")
    return Registration(
        agent_id=message.agent_id,
        host=message.host,
        platforms=tuple(check_platform(p) for p in message.platforms),
        slots=message.slots,
        held_lease_ids=tuple(message.held_lease_ids),
        native_platform=check_platform(message.native_platform) if message.native_platform else "",
        build_pythons=tuple(_python(v) for v in message.build_pythons[:_MAX_PYTHONS]),
    )


_MAX_PYTHONS = 16
_MAX_BUILDS = 64
_MAX_BUILD_TEXT = 200
_PYTHON = re.compile(r"^[0-9]{1,2}\.[0-9]{1,3}$")


def _python(value: str) -> str:
    if not _PYTHON.match(value):
        raise InvalidSpecError(f"an agent's build python `{value[:20]}` is not `MAJOR.MINOR`")
    return value


def _native_builds(values: Sequence[str]) -> tuple[str, ...]:
    """An agent's list of what needs building, bounded (it becomes a status and an error)."""
    builds = tuple(v[:_MAX_BUILD_TEXT] for v in values[:_MAX_BUILDS] if v.strip())
    if len(values) > _MAX_BUILDS:
        builds += (f"{len(values) - _MAX_BUILDS} more",)
    return builds


def _encode(message: ToAgent) -> agents_pb2.CoordinatorMessage:
    if isinstance(message, RevokeLease):
        return agents_pb2.CoordinatorMessage(
            revoked=agents_pb2.LeaseRevoked(lease_id=message.lease_id, reason=message.reason)
        )
    assert isinstance(message, AssignJob)
    job = message.job
    return agents_pb2.CoordinatorMessage(
        assignment=agents_pb2.JobAssignment(
            job_id=job.job_id,
            lease_id=job.lease_id or "",
            req_id=job.req_id,
            platform=job.platform,
            canonical_spec=job.canonical_spec,
            no_archives=job.no_archives,
            requester=common_pb2.Requester(
                user=job.requester.get("user", ""), host=job.requester.get("host", "")
            ),
        )
    )
