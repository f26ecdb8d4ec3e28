"""The typed Python API of envd: everything `envd-client` does, callable from code."""

from __future__ import annotations

import functools
import getpass
import itertools
import json
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import grpc

import envd
from envd.errors import CoordinatorUnavailableError, EnvdError, IncompatibleVersionError
from envd.progress import Outcome, ResolveEvent, Stage
from envd.spec import Spec
from envd.v1 import common_pb2, environments_pb2, environments_pb2_grpc
from envd.wire import (
    PROTOCOL_METADATA_KEY,
    VERSION_METADATA_KEY,
    alias_from_pb,
    error_from_rpc,
    event_from_pb,
    spec_to_pb,
)

from .busy import BusyRetry
from .result import ResolveResult, incomplete, judged

if TYPE_CHECKING:
    from envd.aliases import Alias
    from envd.catalog import EnvironmentSummary
    from envd.deletion import Deletion
    from envd.garbage import GarbageReport

EventCallback = Callable[[ResolveEvent], None]
NoticeCallback = Callable[[str], None]
_METADATA = (
    (PROTOCOL_METADATA_KEY, str(envd.PROTOCOL_VERSION)),
    (VERSION_METADATA_KEY, envd.__version__),
)


@dataclass(frozen=True, slots=True)
class ServerInfo:
    version: str
    protocol_version: int
    store_url: str
    platforms: tuple[str, ...]
    agents_per_platform: dict[str, int] = field(default_factory=dict)


class EnvdClient:
    """A connection to one coordinator (`HOST:PORT` or `unix:PATH`).

    `credentials` make it a secure channel (insecure when None) and `interceptors` wrap every
    call, so authentication can plug in without touching the calls. `on_notice` hears what a
    person waiting should know: the coordinator went away, re-attaching, re-attached, it is
    busy. A call it refuses as busy (RESOURCE_EXHAUSTED: too many open calls) is retried as
    `busy_retry` says; a stream only before its first event, so nothing is seen twice.
    """

    def __init__(
        self,
        target: str,
        *,
        reattach_timeout: float = 120.0,
        credentials: grpc.ChannelCredentials | None = None,
        interceptors: Sequence[grpc.UnaryUnaryClientInterceptor
                               | grpc.UnaryStreamClientInterceptor] = (),
        on_notice: NoticeCallback | None = None,
        busy_retry: BusyRetry | None = None,
    ) -> None:  # fmt: skip
        self.target = target
        self.reattach_timeout = reattach_timeout
        self.on_notice = on_notice
        self.busy_retry = busy_retry or BusyRetry()
        if credentials is None:
            self._channel = grpc.insecure_channel(target)
        else:
            self._channel = grpc.secure_channel(target, credentials)
        channel = grpc.intercept_channel(self._channel, *interceptors) if interceptors else None
        self._stub = environments_pb2_grpc.EnvironmentsStub(channel or self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> EnvdClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def info(self, timeout: float = 10.0, *, wait_for_ready: bool = True) -> ServerInfo:
        """The coordinator's versions, store and platforms. `wait_for_ready=False` fails at
        once when nothing listens, instead of waiting out `timeout` for it to appear."""
        reply = self._call(lambda: self._stub.GetInfo(
            environments_pb2.GetInfoRequest(), metadata=_METADATA, timeout=timeout,
            wait_for_ready=wait_for_ready,
        ))  # fmt: skip
        if reply.protocol_version != envd.PROTOCOL_VERSION:
            raise IncompatibleVersionError(
                f"coordinator speaks protocol {reply.protocol_version} (envd {reply.version}); "
                f"this client speaks {envd.PROTOCOL_VERSION} (envd {envd.__version__})",
                hint="install the envd release the coordinator runs",
            )
        return ServerInfo(
            reply.version, reply.protocol_version, reply.store_url, tuple(reply.platforms),
            dict(sorted(reply.agents_per_platform.items())),
        )  # fmt: skip

    def resolve(
        self,
        spec: Spec,
        platforms: Sequence[str],
        *,
        force: bool = False,
        no_wait: bool = False,
        no_archives: bool = False,
        on_event: EventCallback | None = None,
        use_latest: str = "",
    ) -> ResolveResult:
        """Resolve `spec` for each platform. If the coordinator goes away mid-way, re-attach to
        the accepted jobs (it persisted them) until `reattach_timeout`. `use_latest`: which
        resolved environments may answer (`any`, `mine`, `none`, `USER[,USER…]`)."""
        request = environments_pb2.ResolveRequest(
            spec=spec_to_pb(spec),
            platforms=list(platforms),
            force=force,
            no_wait=no_wait,
            no_archives=no_archives,
            requester=common_pb2.Requester(user=_user(), host=socket.gethostname()),
            use_latest=use_latest,
        )
        result = ResolveResult()
        try:
            stream = self._opened(lambda: self._stub.Resolve(request, metadata=_METADATA))
            self._consume(stream, result, on_event)
        except CoordinatorUnavailableError:
            if no_wait or not result.job_ids():
                raise
            self._reattach(result, on_event)
        if not no_wait:
            self._end_unfinished(result, platforms, on_event)
        return result

    def wait(self, job_ids: Sequence[str], on_event: EventCallback | None = None) -> ResolveResult:
        result = ResolveResult()
        try:
            self._consume(self._opened(lambda: self._wait_stream(job_ids)), result, on_event)
        except CoordinatorUnavailableError:
            self._reattach(result, on_event, list(job_ids))
        self._end_unfinished(result, (), on_event)
        return result

    def get_environment(
        self, *, req_id: str = "", platform: str = "", full_id: str = "", alias: str = ""
    ) -> tuple[dict[str, Any], bool]:
        request = environments_pb2.GetEnvironmentRequest(
            req_id=req_id, platform=platform, full_id=full_id, alias=alias
        )
        reply = self._call(lambda: self._stub.GetEnvironment(request, metadata=_METADATA))
        return json.loads(reply.description_json), reply.is_default

    def list_environments(self, req_id: str = "") -> list[EnvironmentSummary]:
        return self.scan_environments(req_id)[0]

    def scan_environments(self, req_id: str = "") -> tuple[list[EnvironmentSummary], list[str]]:
        """The environments (of one req_id), and a warning for each stored object the
        coordinator skipped because it could not read it."""
        from envd.catalog import EnvironmentSummary  # the catalog's imports cost; only here

        request = environments_pb2.ListEnvironmentsRequest(req_id=req_id)
        reply = self._call(lambda: self._stub.ListEnvironments(request, metadata=_METADATA))
        environments = [
            EnvironmentSummary(e.req_id, e.platform, e.full_id, e.resolved_at, e.is_default)
            for e in reply.environments
        ]
        return environments, list(reply.warnings)

    # aliases, deletion and garbage collection

    def set_alias(self, alias: str, req_id: str, full_ids: dict[str, str]) -> Alias:
        request = environments_pb2.SetAliasRequest(
            alias=alias, req_id=req_id, full_ids=full_ids, requester=_requester()
        )
        return alias_from_pb(self._call(lambda: self._stub.SetAlias(request, metadata=_METADATA)))

    def get_alias(self, alias: str) -> Alias:
        request = environments_pb2.GetAliasRequest(alias=alias)
        return alias_from_pb(self._call(lambda: self._stub.GetAlias(request, metadata=_METADATA)))

    def list_aliases(self, prefix: str = "") -> list[Alias]:
        request = environments_pb2.ListAliasesRequest(prefix=prefix)
        reply = self._call(lambda: self._stub.ListAliases(request, metadata=_METADATA))
        return [alias_from_pb(a) for a in reply.aliases]

    def delete_alias(self, alias: str) -> Alias:
        request = environments_pb2.DeleteAliasRequest(alias=alias, requester=_requester())
        return alias_from_pb(
            self._call(lambda: self._stub.DeleteAlias(request, metadata=_METADATA))
        )

    def delete_environment(
        self, req_id: str, platform: str, full_id: str, *, force: bool = False
    ) -> Deletion:
        from envd.deletion import Deletion  # the catalog's imports cost; only here

        request = environments_pb2.DeleteEnvironmentRequest(
            req_id=req_id, platform=platform, full_id=full_id, force=force,
            requester=_requester(),
        )  # fmt: skip
        reply = self._call(lambda: self._stub.DeleteEnvironment(request, metadata=_METADATA))
        return Deletion(req_id, platform, full_id, reply.default_removed,
                        tuple(reply.aliases_updated))  # fmt: skip

    def collect_garbage(self, *, dry_run: bool, grace: float) -> GarbageReport:
        from envd.garbage import GarbageReport

        request = environments_pb2.CollectGarbageRequest(dry_run=dry_run, grace_seconds=grace)
        reply = self._call(
            lambda: self._stub.CollectGarbage(request, metadata=_METADATA, timeout=3600)
        )
        return GarbageReport(tuple(reply.removed), reply.removed_bytes, reply.kept_young,
                             tuple(reply.unreadable))  # fmt: skip

    def _wait_stream(self, job_ids: Iterable[str]) -> Any:
        request = environments_pb2.WaitRequest(job_ids=list(job_ids))
        return self._stub.Wait(request, metadata=_METADATA)

    def _opened(self, open_stream: Callable[[], Any]) -> Iterator[ResolveEvent]:
        """The events of a stream whose first event (or end) has come: a refusal as busy comes
        before it and is retried with backoff; any later error is the caller's."""

        def start() -> Iterator[ResolveEvent]:
            events = self._events(open_stream())
            first = next(events, None)
            return itertools.chain(() if first is None else (first,), events)

        return self.busy_retry.run(start, self.target, self._notice)

    def _consume(
        self, events: Iterator[ResolveEvent], result: ResolveResult, on_event: EventCallback | None
    ) -> None:
        for event in events:
            result.req_id = result.req_id or event.req_id
            current = result.events.get(event.platform)
            # this request's outcome, then believed only if complete (else a failure)
            recorded = judged(_own_outcome(event, current))
            if event.stage is Stage.ACCEPTED or event.stage.terminal or current is None:
                result.events[event.platform] = recorded
            if on_event is not None:
                on_event(recorded)

    @staticmethod
    def _end_unfinished(
        result: ResolveResult, platforms: Sequence[str], on_event: EventCallback | None
    ) -> None:
        """The stream ended: a platform it left unfinished failed (and the progress says so)."""
        before = dict(result.events)
        result.end_unfinished(platforms)
        for platform, event in result.events.items():
            if on_event is not None and before.get(platform) is not event:
                on_event(event)

    def _reattach(
        self,
        result: ResolveResult,
        on_event: EventCallback | None,
        job_ids: list[str] | None = None,
    ) -> None:
        deadline = time.monotonic() + self.reattach_timeout
        delay = 0.2
        pending = self._pending(result, job_ids)
        if not pending:
            return
        self._notice(
            f"lost the coordinator at `{self.target}`; re-attaching to {' '.join(pending)} "
            f"for up to {self.reattach_timeout:g} s"
        )
        while pending:
            try:
                self.info(timeout=max(0.1, deadline - time.monotonic()))  # blocks until it is back
                self._notice(f"re-attached to the coordinator at `{self.target}`")
                stream = self._opened(functools.partial(self._wait_stream, list(pending)))
                self._consume(stream, result, on_event)
                return
            except CoordinatorUnavailableError as err:
                pending = self._pending(result, job_ids)
                if time.monotonic() > deadline:
                    raise CoordinatorUnavailableError(
                        f"failed to re-attach to the coordinator at `{self.target}` within "
                        f"{self.reattach_timeout:g} s",
                        hint="the jobs go on without this client; follow them with "
                        f"`envd-client wait {' '.join(pending)}`",
                    ) from err
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    @staticmethod
    def _pending(result: ResolveResult, job_ids: list[str] | None) -> list[str]:
        if job_ids is not None:
            ended = {e.job_id for e in result.events.values() if e.stage.terminal}
            return [j for j in job_ids if j not in ended]
        return [e.job_id for e in result.events.values() if e.job_id and not e.stage.terminal]

    def _notice(self, text: str) -> None:
        if self.on_notice is not None:
            self.on_notice(text)

    def _events(self, stream: Any) -> Iterator[ResolveEvent]:
        try:
            for message in stream:
                yield _decoded(message)
        except grpc.RpcError as err:
            raise error_from_rpc(err) from err

    def _call(self, fn: Callable[[], Any]) -> Any:
        def call() -> Any:
            try:
                return fn()
            except grpc.RpcError as err:
                raise error_from_rpc(err) from err

        return self.busy_retry.run(call, self.target, self._notice)


def _decoded(message: environments_pb2.ResolveEvent) -> ResolveEvent:
    """The event a message carries; one envd cannot read (a stage or outcome it does not know,
    a description that is not JSON) is a failure of its platform, not a traceback."""
    try:
        return event_from_pb(message)
    except (ValueError, KeyError):
        bare = ResolveEvent(message.req_id, message.platform, Stage.FAILED, message.job_id)
        return incomplete(bare, "an event envd cannot read (its stage, outcome or description)")


def _own_outcome(event: ResolveEvent, previous: ResolveEvent | None) -> ResolveEvent:
    """Later events keep the outcome this request was promised (resolved or dedup): events
    without one take it, and a terminal event carries it; only a failure replaces it."""
    if previous is None or event.outcome is Outcome.FAILED:
        return event
    if event.outcome is None or (
        event.stage.terminal and previous.outcome in (Outcome.DEDUP, Outcome.RESOLVED)
    ):
        return replace(event, outcome=previous.outcome)
    return event


def _requester() -> common_pb2.Requester:
    return common_pb2.Requester(user=_user(), host=socket.gethostname())


def local_user() -> str:
    """Who runs this client, as recorded when no token names them."""
    return _user()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


__all__ = ["BusyRetry", "EnvdClient", "EnvdError", "ResolveResult", "ServerInfo"]
