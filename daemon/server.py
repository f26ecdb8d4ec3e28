"""Wires the coordinator's objects into one gRPC server (health, reflection included)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from envd.catalog import Catalog
from envd.clock import Clock, SystemClock, random_id
from envd.store.url import open_store
from envd.v1 import agents_pb2, agents_pb2_grpc, environments_pb2, environments_pb2_grpc

from .agent_registry import AgentRegistry
from .agent_sessions import AgentSessions
from .agents_servicer import AgentsServicer
from .coordinator import Coordinator
from .dispatcher import Dispatcher
from .environments_servicer import EnvironmentsServicer
from .job_events import JobEvents
from .settings import CoordinatorSettings
from .state import SqliteJobState

log = logging.getLogger("envd.daemon")
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
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
    state: SqliteJobState

    async def stop(self, grace: float | None = 1.0) -> None:
        await self.dispatcher.stop()
        await self.server.stop(grace)
        self.state.close()


async def start_daemon(
    *, listen: str, store_url: str, state_path: Path, settings: CoordinatorSettings,
    clock: Clock | None = None,
) -> RunningDaemon:  # fmt: skip
    """Build and start a coordinator; `listen` is `HOST:PORT` (port 0 picks one) or `unix:PATH`."""
    clock = clock or SystemClock()
    store = open_store(store_url)
    catalog = Catalog(store)
    state = SqliteJobState(state_path, random_id)
    now = clock.now()
    regranted = state.extend_leases_after_restart(now + settings.lease_ttl, now)
    if regranted:
        log.info(
            "restart: %d leased job(s) wait %gs for their agents", regranted, settings.lease_ttl
        )
    registry = AgentRegistry()
    events = JobEvents()
    dispatcher = Dispatcher(
        state=state, registry=registry, events=events, clock=clock, settings=settings
    )
    coordinator = Coordinator(
        state=state, catalog=catalog, clock=clock, settings=settings,
        registry=registry, events=events, dispatcher=dispatcher,
    )  # fmt: skip
    sessions = AgentSessions(
        state=state, catalog=catalog, registry=registry, events=events,
        dispatcher=dispatcher, clock=clock, settings=settings,
    )  # fmt: skip
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ]
    )
    environments_pb2_grpc.add_EnvironmentsServicer_to_server(
        EnvironmentsServicer(coordinator, catalog, registry), server
    )
    agents_pb2_grpc.add_AgentsServicer_to_server(
        AgentsServicer(sessions, store.url, settings), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((*SERVICE_NAMES, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(listen)
    if port == 0 and not listen.startswith("unix:"):
        raise OSError(f"failed to listen on `{listen}`")
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    dispatcher.start()
    address = listen if listen.startswith("unix:") else f"{listen.rsplit(':', 1)[0]}:{port}"
    log.info("envd-daemon listening on %s, store %s, state %s", address, store.url, state_path)
    return RunningDaemon(server, address, coordinator, dispatcher, state)
