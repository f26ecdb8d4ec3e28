"""The agent's link to its coordinator: dial out, register, heartbeat, run leased jobs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

import envd
from envd.errors import EnvdError, InternalError
from envd.logs import JobFields, job_task_context
from envd.progress import Stage
from envd.v1 import agents_pb2, agents_pb2_grpc
from envd.wire import (
    PROTOCOL_METADATA_KEY,
    VERSION_METADATA_KEY,
    error_from_rpc,
    error_to_pb,
    stage_to_pb,
)

from .job_runner import Assignment, JobRunner
from .native_build import NativeBuildNeeded

log = logging.getLogger("envd.agent")
_METADATA = (
    (PROTOCOL_METADATA_KEY, str(envd.PROTOCOL_VERSION)),
    (VERSION_METADATA_KEY, envd.__version__),
)
# the coordinator said no (protocol, platform, token, role): the agent exits, naming why
_REFUSED = ("FAILED_PRECONDITION", "INVALID_ARGUMENT", "UNAUTHENTICATED", "PERMISSION_DENIED")
_END = agents_pb2.AgentMessage()  # ends the outgoing stream (half-close) after what is queued


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    agent_id: str
    host: str
    platforms: tuple[str, ...]
    slots: int = 1
    native_platform: str = ""  # the platform it builds wheels for (its machine's)
    build_pythons: tuple[str, ...] = ()  # "3.11": host interpreters it builds with


RunnerFactory = Callable[[str], JobRunner]  # store URL (from the coordinator) → runner


class AgentConnection:
    """Keeps one stream to the coordinator open, reconnecting with backoff. Jobs and their
    leases outlive a broken stream: on reconnect the agent presents the leases it still works
    on and keeps them (within the TTL). Messages wait in one outbox across reconnects, so a
    result finished while disconnected is still sent. A revoked lease cancels its job."""

    def __init__(
        self, target: str, identity: AgentIdentity, make_runner: RunnerFactory, *,
        credentials: grpc.ChannelCredentials | None = None,
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    ) -> None:  # fmt: skip
        self.target = target
        self.identity = identity
        self.make_runner = make_runner
        self.credentials = credentials
        self.interceptors = list(interceptors)
        self.runner: JobRunner | None = None
        self.outbox: asyncio.Queue[agents_pb2.AgentMessage] = asyncio.Queue()
        self.active: dict[str, asyncio.Task[None]] = {}
        self.connected = asyncio.Event()

    async def run_forever(self, stop: asyncio.Event) -> None:
        delay = 0.1
        while not stop.is_set():
            try:
                await self._session(stop)
                delay = 0.1
            except EnvdError as err:
                if err.status in _REFUSED:
                    log.error("refused by the coordinator `%s`: %s", self.target, err.message)
                    raise  # retrying cannot help
                log.warning("coordinator `%s` unreachable: %s", self.target, err.message)
            self.connected.clear()
            if stop.is_set():
                break
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, 5.0)
        await self._cancel_all("agent stopping")

    def _channel(self) -> grpc.aio.Channel:
        if self.credentials is None:
            return grpc.aio.insecure_channel(self.target, interceptors=self.interceptors)
        return grpc.aio.secure_channel(
            self.target, self.credentials, interceptors=self.interceptors
        )

    async def _session(self, stop: asyncio.Event) -> None:
        async with self._channel() as channel:
            call = agents_pb2_grpc.AgentsStub(channel).Connect(self._outgoing(), metadata=_METADATA)
            try:
                first = await call.read()
                if first is grpc.aio.EOF or not first.HasField("welcome"):
                    raise InternalError("the coordinator closed the stream without a welcome")
                welcome = first.welcome
                if self.runner is None:
                    self.runner = self.make_runner(welcome.store_url)
                log.info(
                    "connected to %s (envd %s), platforms=%s, store=%s, holding %d lease(s)",
                    self.target, welcome.version, list(self.identity.platforms),
                    welcome.store_url, len(self.active),
                )  # fmt: skip
                self.connected.set()
                beat = asyncio.create_task(self._heartbeat(welcome.heartbeat_interval_ms / 1000))
                stopper = asyncio.create_task(stop.wait())
                try:
                    pending_read = await self._receive(call, stopper)
                    if pending_read is not None:
                        await self._release_all(call, pending_read)
                finally:
                    beat.cancel()
                    stopper.cancel()
                    call.cancel()
            except grpc.aio.AioRpcError as err:
                raise error_from_rpc(err) from err

    async def _receive(self, call: Any, stopper: asyncio.Task[bool]) -> asyncio.Future[Any] | None:
        """Handle coordinator messages until the stream ends (None) or stop is asked: then the
        read still pending (cancelling it would cancel the whole call)."""
        while True:
            read: asyncio.Future[Any] = asyncio.ensure_future(call.read())
            done, _ = await asyncio.wait({read, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if read not in done:
                return read
            message = read.result()
            if message is grpc.aio.EOF:
                return None
            kind = message.WhichOneof("body")
            if kind == "assignment":
                self._start(message.assignment)
            elif kind == "revoked":
                self._revoked(message.revoked.lease_id, message.revoked.reason)

    def _revoked(self, lease_id: str, reason: str) -> None:
        task = self.active.pop(lease_id, None)
        if task is None:
            return
        log.warning("lease %s revoked: %s; cancelling its job", lease_id, reason)
        task.cancel()

    async def _release_all(self, call: Any, pending_read: asyncio.Future[Any]) -> None:
        """Stopping: cancel the running jobs and give their leases back so they are queued
        again at once, then half-close and let the coordinator end the stream."""
        held = list(self.active)
        await self._cancel_all("agent stopping")
        for lease_id in held:
            self.outbox.put_nowait(
                agents_pb2.AgentMessage(
                    release=agents_pb2.JobRelease(lease_id=lease_id, reason="agent stopping")
                )
            )
        self.outbox.put_nowait(_END)
        try:
            async with asyncio.timeout(5.0):
                message = await pending_read
                while message is not grpc.aio.EOF:  # revocations etc.: the jobs are gone
                    message = await call.read()
        except (TimeoutError, grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        if held:
            log.info("released %d lease(s)", len(held))

    async def _cancel_all(self, reason: str) -> None:
        tasks = list(self.active.values())
        self.active.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _outgoing(self) -> AsyncIterator[agents_pb2.AgentMessage]:
        identity = self.identity
        yield agents_pb2.AgentMessage(
            register=agents_pb2.Register(
                agent_id=identity.agent_id,
                host=identity.host,
                platforms=list(identity.platforms),
                protocol_version=envd.PROTOCOL_VERSION,
                version=envd.__version__,
                slots=identity.slots,
                held_lease_ids=list(self.active),
                native_platform=identity.native_platform,
                build_pythons=list(identity.build_pythons),
            )
        )
        while True:
            message = await self.outbox.get()
            if message is _END:
                return
            yield message

    async def _heartbeat(self, interval: float) -> None:
        while True:
            self.outbox.put_nowait(
                agents_pb2.AgentMessage(heartbeat=agents_pb2.Heartbeat(lease_ids=list(self.active)))
            )
            await asyncio.sleep(interval)

    def _start(self, message: agents_pb2.JobAssignment) -> None:
        job = Assignment(
            job_id=message.job_id,
            lease_id=message.lease_id,
            req_id=message.req_id,
            platform=message.platform,
            canonical_spec=message.canonical_spec,
            no_archives=message.no_archives,
            requester_user=message.requester.user,
        )
        fields = JobFields(job.job_id, job.req_id, job.platform, self.identity.agent_id)
        log.info("leased job=%s lease=%s platform=%s", job.job_id, job.lease_id, job.platform,
                 extra=fields.as_dict())  # fmt: skip
        task = asyncio.create_task(
            self._run(job), name=f"job-{job.job_id}", context=job_task_context(fields)
        )
        self.active[job.lease_id] = task

    async def _run(self, job: Assignment) -> None:
        async def progress(stage: Stage, text: str) -> None:
            self.outbox.put_nowait(
                agents_pb2.AgentMessage(
                    progress=agents_pb2.JobProgress(
                        lease_id=job.lease_id,
                        stage=stage_to_pb(stage),  # type: ignore[arg-type]
                        message=text,
                    )
                )
            )

        assert self.runner is not None
        try:
            full_id = await self.runner.run(job, progress)
            reply = agents_pb2.AgentMessage(
                result=agents_pb2.JobResult(lease_id=job.lease_id, full_id=full_id)
            )
        except asyncio.CancelledError:
            log.info("job=%s cancelled", job.job_id)
            raise
        except NativeBuildNeeded as need:
            log.info("job=%s handed back: %s", job.job_id, need)
            reply = agents_pb2.AgentMessage(
                release=agents_pb2.JobRelease(
                    lease_id=job.lease_id,
                    reason=str(need),
                    native_builds=list(need.builds),
                    native_python=need.python,
                )
            )
        except EnvdError as err:
            log.warning("job=%s failed: %s", job.job_id, err.message)
            reply = agents_pb2.AgentMessage(
                failure=agents_pb2.JobFailure(lease_id=job.lease_id, error=error_to_pb(err))
            )
        except Exception as err:  # job boundary: report, keep the agent alive
            log.exception("job=%s crashed", job.job_id)
            wrapped = InternalError(f"agent `{self.identity.agent_id}` crashed on the job: {err}")
            reply = agents_pb2.AgentMessage(
                failure=agents_pb2.JobFailure(lease_id=job.lease_id, error=error_to_pb(wrapped))
            )
        finally:
            self.active.pop(job.lease_id, None)
        self.outbox.put_nowait(reply)


def platforms_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
