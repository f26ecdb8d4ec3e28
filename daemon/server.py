"""Wires the coordinator's objects into one gRPC server (health, reflection included)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from envd.alias_book import AliasBook
from envd.catalog import Catalog
from envd.clock import Clock, SystemClock
from envd.store.url import open_store
from envd.v1 import agents_pb2, environments_pb2

from .agent_registry import AgentRegistry, CloseSession
from .agent_sessions import AgentSessions
from .agents_servicer import AgentsServicer, add_agents_servicer
from .aliases_servicer import AliasesServicer, add_aliases_servicer
from .coordinator import Coordinator
from .dispatcher import Dispatcher
from .environments_servicer import EnvironmentsServicer, add_environments_servicer
from .hit_cache import HitCache
from .interceptors import ProtocolVersionInterceptor
from .job_events import JobEvents, LocalJobEvents
from .jobs import JobHook, JobLifecycle, Transition, no_hook
from .replicas import Replicas
from .settings import CoordinatorSettings
from .state import Job, JobState

log = logging.getLogger("envd.daemon")
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MIN_PENDING_CALLS = 16384  # calls arrived but not yet taken by the server's loop
SERVICE_NAMES = (
    environments_pb2.DESCRIPTOR.services_by_name["Environments"].full_name,
    agents_pb2.DESCRIPTOR.services_by_name["Agents"].full_name,
)


@dataclass(slots=True)
class RunningDaemon:
    server: grpc.aio.Server
    address: str
    coordinator: Coordinator
    dispatcher: Dispatcher
    registry: AgentRegistry
    state: JobState
    health: health.aio.HealthServicer
    background: list[asyncio.Task[Any]]

    async def stop(self, grace: float = 1.0) -> None:
        """Stop accepting, tell open Resolve streams to re-attach (UNAVAILABLE, with their job
        ids) and agents to reconnect later, then close the state. Leases survive: agents
        reconnecting to the next coordinator within the TTL keep their jobs."""
        await self.health.enter_graceful_shutdown()
        self.coordinator.stopping.set()
        for agent in self.registry.all():
            agent.send(CloseSession("coordinator shutting down"))
        # stop listening first: a client re-attaching must reach the next coordinator, not
        # this one while it winds down (its calls would be cancelled at the end of `grace`)
        await self.server.stop(grace)
        await self.dispatcher.stop()
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await self.state.close()


async def start_daemon(
    *, listen: str, store_url: str, state: JobState, settings: CoordinatorSettings,
    clock: Clock | None = None, events: JobEvents | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    credentials: grpc.ServerCredentials | None = None, hook: JobHook = no_hook,
    requeue_leased_at_start: bool = False, replicas: Replicas | None = None,
) -> RunningDaemon:  # fmt: skip
    """Build and start a coordinator; `listen` is `HOST:PORT` (port 0 picks one) or `unix:PATH`.

    `interceptors` run before envd's own (auth, metrics); `credentials` serve TLS instead of
    plaintext. `requeue_leased_at_start`: no agent of the previous run can be alive (the
    embedded default), so its leased jobs are queued again at once instead of after a TTL.
    `replicas`: other coordinators share the state (PostgreSQL); the agent registry and the
    events then come from it.
    """
    clock = clock or SystemClock()
    store = open_store(store_url)
    catalog = Catalog(store)
    now = clock.now()
    affected = await state.recover_after_restart(
        now + settings.lease_ttl, now, requeue=requeue_leased_at_start
    )
    if affected:
        verb = "queued again" if requeue_leased_at_start else "wait one TTL for their agents"
        log.info("restart: %d leased job(s) %s", affected, verb)
    registry = replicas.registry if replicas is not None else AgentRegistry()
    if replicas is not None:
        events = replicas.events
    hits = HitCache(catalog, clock)

    def on_transition(transition: Transition, job: Job, /) -> None:
        if transition is Transition.COMPLETED:
            hits.forget(job.req_id, job.platform)  # its default pointer just moved
        hook(transition, job)

    jobs = JobLifecycle(
        state=state, events=events or LocalJobEvents(), catalog=catalog, clock=clock,
        settings=settings, hook=on_transition,
    )  # fmt: skip
    dispatcher = Dispatcher(jobs=jobs, registry=registry, clock=clock, settings=settings)
    coordinator = Coordinator(
        jobs=jobs, catalog=catalog, clock=clock, settings=settings, registry=registry,
        dispatcher=dispatcher,
    )  # fmt: skip
    sessions = AgentSessions(
        jobs=jobs, registry=registry, dispatcher=dispatcher, clock=clock, settings=settings
    )
    # grpc core cancels calls still waiting for the server's loop past
    # `grpc.server.max_pending_requests` (1000 by default): clients saw CANCELLED for a fifth of
    # a burst of 3,000 streams. With room for such a burst, every call reaches the concurrency
    # limit below, which answers or refuses it with RESOURCE_EXHAUSTED.
    pending = max(MIN_PENDING_CALLS, 4 * settings.max_concurrent_calls)
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ("grpc.server.max_pending_requests", pending),
        ("grpc.server.max_pending_requests_hard_limit", pending),
    ]
    server = grpc.aio.server(
        interceptors=[*interceptors, ProtocolVersionInterceptor()], options=options,
        # past this many open calls a new one is refused with RESOURCE_EXHAUSTED (clients
        # back off and retry) instead of every call slowing down
        maximum_concurrent_rpcs=settings.max_concurrent_calls,
    )  # fmt: skip
    aliases = AliasBook(store, catalog)
    add_environments_servicer(
        EnvironmentsServicer(coordinator, catalog, registry, hits, aliases), server
    )
    add_aliases_servicer(
        AliasesServicer(store=store, catalog=catalog, aliases=aliases, clock=clock, hits=hits),
        server,
    )
    add_agents_servicer(AgentsServicer(sessions, store.url, settings), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((*SERVICE_NAMES, reflection.SERVICE_NAME), server)
    if credentials is None:
        port = server.add_insecure_port(listen)
    else:
        port = server.add_secure_port(listen, credentials)
    if port == 0 and not listen.startswith("unix:"):
        raise OSError(f"failed to listen on `{listen}`")
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    background: list[asyncio.Task[Any]] = [  # jobs a coordinator that stopped left completing
        asyncio.get_running_loop().create_task(jobs.finish_completion(job))
        for job in await state.completing()
    ]
    if replicas is not None:
        background.append(asyncio.get_running_loop().create_task(replicas.run(jobs, dispatcher)))
    dispatcher.start()
    address = listen if listen.startswith("unix:") else f"{listen.rsplit(':', 1)[0]}:{port}"
    log.info("envd-daemon listening on %s, store %s", address, store.url)
    return RunningDaemon(
        server, address, coordinator, dispatcher, registry, state, health_servicer, background
    )
