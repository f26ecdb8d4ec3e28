"""Thin gRPC servicer for `envd.v1.Environments`: decode, call the coordinator, encode."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

import envd
from envd.alias_book import AliasBook
from envd.aliases import Alias, parse_alias
from envd.catalog import Catalog
from envd.errors import (
    EnvdError,
    EnvironmentNotFoundError,
    InvalidSpecError,
)
from envd.ids import is_id
from envd.ids import req_id as compute_req_id
from envd.progress import Outcome
from envd.spec import Spec, normalize_spec
from envd.use_latest import parse_use_latest
from envd.v1 import environments_pb2, environments_pb2_grpc
from envd.wire import error_metadata, event_to_pb, raw_spec_from_pb, status_code

from .agent_registry import AgentRegistry
from .aliases_servicer import caller
from .coordinator import Coordinator
from .decoding import decoder, guard_stream, guard_unary
from .hit_cache import HitCache
from .limits import check_locked_archives, check_resolve_request, check_spec

log = logging.getLogger("envd.daemon")
MAX_LIST_WARNINGS = 100  # lines of `ListEnvironmentsResponse.warnings`; the log has them all


class EnvironmentsServicer(environments_pb2_grpc.EnvironmentsServicer):  # type: ignore[misc]
    def __init__(
        self, coordinator: Coordinator, catalog: Catalog, registry: AgentRegistry, hits: HitCache,
        aliases: AliasBook | None = None,
    ) -> None:  # fmt: skip
        self.coordinator = coordinator
        self.catalog = catalog
        self.registry = registry
        self.hits = hits
        self.aliases = aliases

    async def GetInfo(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return environments_pb2.ServerInfo(
            version=envd.__version__,
            protocol_version=envd.PROTOCOL_VERSION,
            store_url=self.coordinator.settings.store_url,
            platforms=self.registry.platforms(),
            agents_per_platform=self.registry.agents_by_platform(),
        )

    async def Resolve(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[environments_pb2.ResolveEvent | bytes]:
        try:
            check_resolve_request(request)
            platforms = list(dict.fromkeys(request.platforms))
            spec_bytes = request.spec.SerializeToString(deterministic=True)
            if request.spec.locked:  # up to MBs: the hit cache keys it by its digest
                spec_bytes = hashlib.sha256(spec_bytes).digest()
            # only the shared default answers on the fast path; other policies list and read
            shared = request.use_latest in ("", "any")
            if not request.force and shared:
                known = self.hits.known_req_id(spec_bytes)
                if known is not None:
                    answers = await self.hits.answers(known, platforms, request.no_archives)
                    if answers is not None:
                        for answer in answers:
                            yield answer
                        return
            spec = normalize_spec(raw_spec_from_pb(request.spec))
            check_spec(spec, _largest_job(spec, platforms), platforms)
            check_locked_archives(spec, request.no_archives)
            rid = self.hits.req_id_of(spec_bytes, lambda: compute_req_id(spec))
            # pointers read before the answer is built: if one moves in between, the cached
            # answer carries the older pointer and is re-read on its next check
            pointers = {} if request.force or not shared else await asyncio.to_thread(
                lambda: {p: self.catalog.get_default(rid, p) for p in platforms}
            )  # fmt: skip
            events = self.coordinator.resolve(
                spec,
                platforms,
                force=request.force,
                no_wait=request.no_wait,
                no_archives=request.no_archives,
                use_latest=parse_use_latest(request.use_latest),
                # resolved_by: the authenticated identity, never a name the client chose
                requester={"user": caller(request.requester), "host": request.requester.host},
            )
            async for event in events:
                if event.outcome is not Outcome.CACHE_HIT:
                    yield event_to_pb(event)
                    continue
                encoded = event_to_pb(event).SerializeToString()
                self.hits.remember(
                    rid, event.platform, request.no_archives, encoded, pointers.get(event.platform)
                )
                yield encoded
        except EnvdError as err:
            await _abort(context, err)

    async def Wait(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[environments_pb2.ResolveEvent]:
        try:
            async for event in self.coordinator.wait(list(request.job_ids)):
                yield event_to_pb(event)
        except EnvdError as err:
            await _abort(context, err)

    async def GetEnvironment(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            description, is_default = await asyncio.to_thread(self._find, request)
        except EnvdError as err:
            await _abort(context, err)
        return environments_pb2.Environment(
            description_json=json.dumps(description, sort_keys=True).encode(),
            is_default=is_default,
        )

    def _find(self, request: Any) -> tuple[dict[str, Any], bool]:
        if request.alias and self.aliases is not None:
            alias = self.aliases.get(parse_alias(request.alias))
            platform = request.platform or _only_platform(alias)
            named = self.aliases.describe(alias, platform)
            default = self.catalog.get_default(named["req_id"], platform)
            return named, default is not None and default.full_id == named["full_id"]
        if request.full_id:
            found = self.catalog.find_by_full_id(request.full_id)
            if request.platform:
                found = [d for d in found if d["platform"] == request.platform]
            if not found:
                raise EnvironmentNotFoundError(f"no environment with full_id `{request.full_id}`")
            default = self.catalog.get_default(found[0]["req_id"], found[0]["platform"])
            return found[0], default is not None and default.full_id == request.full_id
        if not is_id(request.req_id) or not request.platform:
            raise InvalidSpecError(
                "give a full_id, or a req_id (40 hex characters) and a platform",
                hint="ids are printed by `envd-client resolve` as `req_id:full_id`",
            )
        description = self.catalog.default_description(request.req_id, request.platform)
        if description is None:
            raise EnvironmentNotFoundError(
                f"no environment for req_id `{request.req_id}` on `{request.platform}`",
                hint="resolve it first with `envd-client resolve`",
            )
        return description, True

    async def ListEnvironments(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            listing = await asyncio.to_thread(
                self.catalog.scan_environments, request.req_id or None
            )
        except EnvdError as err:
            await _abort(context, err)
        warnings = [item.warning() for item in listing.unreadable]
        for warning in warnings:
            log.warning("%s", warning)
        if len(warnings) > MAX_LIST_WARNINGS:
            more = len(warnings) - MAX_LIST_WARNINGS + 1
            warnings[MAX_LIST_WARNINGS - 1 :] = [
                f"and {more} more unreadable objects: see the coordinator's log"
            ]
        return environments_pb2.ListEnvironmentsResponse(
            environments=[
                environments_pb2.EnvironmentSummary(
                    req_id=e.req_id,
                    platform=e.platform,
                    full_id=e.full_id,
                    resolved_at=e.resolved_at,
                    is_default=e.is_default,
                )
                for e in listing.environments
            ],
            warnings=warnings,
        )


def _largest_job(spec: Spec, platforms: list[str]) -> bytes:
    """The canonical spec the largest of the request's jobs will carry (a lock's job carries
    its platform's packages; any other spec's jobs carry the same bytes)."""
    if not spec.locked:
        return spec.canonical_bytes()
    return max((spec.job_bytes(p) for p in platforms), key=len)


def _only_platform(alias: Alias) -> str:
    if len(alias.environments) == 1:
        return next(iter(alias.environments))
    raise InvalidSpecError(
        f"alias `{alias.name}` names environments on several platforms; give one",
        hint="it names: " + ", ".join(f"`{p}`" for p in sorted(alias.environments)),
    )


def _encode(message: Any) -> bytes:
    """Responses are messages, or already-encoded answers (the cache-hit fast path)."""
    return message if isinstance(message, bytes) else message.SerializeToString()


def add_environments_servicer(servicer: EnvironmentsServicer, server: grpc.aio.Server) -> None:
    """The generated registration, but with responses that may come encoded already and
    requests that may not decode (refused as INVALID_ARGUMENT)."""
    pb = environments_pb2
    unary, stream = grpc.unary_unary_rpc_method_handler, grpc.unary_stream_rpc_method_handler
    handlers = {
        "GetInfo": unary(guard_unary(servicer.GetInfo), decoder(pb.GetInfoRequest), _encode),
        "Resolve": stream(guard_stream(servicer.Resolve), decoder(pb.ResolveRequest), _encode),
        "Wait": stream(guard_stream(servicer.Wait), decoder(pb.WaitRequest), _encode),
        "GetEnvironment": unary(
            guard_unary(servicer.GetEnvironment), decoder(pb.GetEnvironmentRequest), _encode
        ),
        "ListEnvironments": unary(
            guard_unary(servicer.ListEnvironments), decoder(pb.ListEnvironmentsRequest), _encode
        ),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("envd.v1.Environments", handlers),)
    )


async def _abort(context: grpc.aio.ServicerContext, err: EnvdError) -> Any:
    log.info("refused request: %s (%s)", err.message, err.reference)
    await context.abort(status_code(err), err.message, error_metadata(err))
