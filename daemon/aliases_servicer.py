"""Thin gRPC servicer for the alias and deletion calls of `envd.v1.Environments`: decode, check
the caller's namespace or role, call the domain (store I/O on a thread), encode."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc

from envd.alias_book import AliasBook
from envd.aliases import AliasTarget, parse_alias
from envd.catalog import Catalog
from envd.clock import Clock, rfc3339
from envd.deletion import delete_environment
from envd.errors import EnvdError
from envd.garbage import collect_garbage
from envd.store.base import Store
from envd.v1 import environments_pb2
from envd.wire import alias_to_pb, error_metadata, status_code

from .auth import current_principal, require_admin, require_namespace
from .decoding import decoder, guard_unary
from .hit_cache import HitCache

log = logging.getLogger("envd.daemon")


def caller(requester: Any) -> str:
    """Who to record: the authenticated identity, or with auth off the user the client named."""
    principal = current_principal()
    if principal is not None:
        return principal.identity
    return str(requester.user) or "unknown"


class AliasesServicer:
    def __init__(
        self, *, store: Store, catalog: Catalog, aliases: AliasBook, clock: Clock, hits: HitCache
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.aliases = aliases
        self.clock = clock
        self.hits = hits

    async def SetAlias(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def run() -> Any:
            name = parse_alias(request.alias)
            require_namespace(name.namespace)
            target = AliasTarget(request.req_id, dict(request.full_ids))
            alias = await asyncio.to_thread(
                self.aliases.set, name, target, who=caller(request.requester), when=self._when()
            )
            log.info("alias %s → %s by %s", name, target.describe(), caller(request.requester))
            return alias_to_pb(alias)

        return await _answer(context, run)

    async def GetAlias(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def run() -> Any:
            name = parse_alias(request.alias)
            return alias_to_pb(await asyncio.to_thread(self.aliases.get, name))

        return await _answer(context, run)

    async def ListAliases(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def run() -> Any:
            listing = await asyncio.to_thread(self.aliases.list_aliases, request.prefix)
            for item in listing.unreadable:
                log.warning("skipped unreadable alias `%s`: %s", item.key, item.reason)
            return environments_pb2.ListAliasesResponse(
                aliases=[alias_to_pb(a, history=False) for a in listing.aliases]
            )

        return await _answer(context, run)

    async def DeleteAlias(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def run() -> Any:
            name = parse_alias(request.alias)
            require_namespace(name.namespace, deleting=True)
            who = caller(request.requester)
            alias = await asyncio.to_thread(self.aliases.delete, name, who=who, when=self._when())
            log.info("alias %s deleted by %s", name, who)
            return alias_to_pb(alias)

        return await _answer(context, run)

    async def DeleteEnvironment(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def run() -> Any:
            require_admin("delete environments")
            who = caller(request.requester)
            done = await asyncio.to_thread(
                delete_environment, self.catalog, self.aliases, request.req_id,
                request.platform, request.full_id, force=request.force, who=who,
                when=self._when(),
            )  # fmt: skip
            self.hits.forget(done.req_id, done.platform)
            log.info("environment %s:%s on %s deleted by %s", done.req_id, done.full_id,
                     done.platform, who)  # fmt: skip
            return environments_pb2.DeleteEnvironmentResponse(
                default_removed=done.default_removed, aliases_updated=list(done.aliases_updated)
            )

        return await _answer(context, run)

    async def CollectGarbage(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def run() -> Any:
            require_admin("collect garbage")
            report = await asyncio.to_thread(
                collect_garbage, self.store, now=self.clock.now(),
                grace=max(0.0, request.grace_seconds), dry_run=request.dry_run,
            )  # fmt: skip
            return environments_pb2.CollectGarbageResponse(
                removed=list(report.removed), removed_bytes=report.removed_bytes,
                kept_young=report.kept_young, unreadable=list(report.unreadable),
            )  # fmt: skip

        return await _answer(context, run)

    def _when(self) -> str:
        return rfc3339(self.clock.now())


async def _answer(context: grpc.aio.ServicerContext, run: Any) -> Any:
    try:
        return await run()
    except EnvdError as err:
        log.info("refused request: %s (%s)", err.message, err.reference)
        await context.abort(status_code(err), err.message, error_metadata(err))


def add_aliases_servicer(servicer: AliasesServicer, server: grpc.aio.Server) -> None:
    """Registered beside `add_environments_servicer`: the same service, these methods."""
    pb = environments_pb2
    requests = {
        "SetAlias": pb.SetAliasRequest,
        "GetAlias": pb.GetAliasRequest,
        "ListAliases": pb.ListAliasesRequest,
        "DeleteAlias": pb.DeleteAliasRequest,
        "DeleteEnvironment": pb.DeleteEnvironmentRequest,
        "CollectGarbage": pb.CollectGarbageRequest,
    }
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            guard_unary(getattr(servicer, name)),
            decoder(message),
            lambda reply: reply.SerializeToString(),
        )
        for name, message in requests.items()
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("envd.v1.Environments", handlers),)
    )
