"""`JobEvents` across coordinator replicas: PostgreSQL LISTEN/NOTIFY between them, the
in-process fan-out within each."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from envd.errors import EnvdError, error_from_dict, error_to_dict
from envd.progress import Outcome, ResolveEvent, Stage

from .job_events import LocalJobEvents, Subscription, job_event
from .state import Job
from .state_postgres import QUEUED_CHANNEL, PostgresJobState, link_timeouts

log = logging.getLogger("envd.daemon")
EVENTS_CHANNEL = "envd_job_events"
# NOTIFY payloads must stay under 8000 bytes: messages are cut, descriptions re-read
_MAX_TEXT = 2000
_MAX_PENDING = 10_000  # notifications waiting to be sent; past it progress is dropped
_BATCH = 200
_RECONCILE_INTERVAL = 2.0
ReadDescription = Callable[[str, str, str], dict[str, Any]]


class PostgresJobEvents:
    """Publishing delivers to this replica's subscribers at once and sends one NOTIFY (in
    publish order, from one connection); each other replica delivers it to its own.

    What NOTIFY can lose (a replica killed between its state write and its NOTIFY, a listener
    reconnecting) is made good by re-reading: every `_RECONCILE_INTERVAL` the jobs followed
    here that ended in the state get their terminal event, so the protocol's promise (every
    terminal event, the latest progress) holds across replicas."""

    def __init__(self, state: PostgresJobState) -> None:
        self.state = state
        self.origin = state.replica_id
        self.local = LocalJobEvents()
        self.on_queued: Callable[[str], None] = lambda platform: None
        self._outgoing: asyncio.Queue[str] = asyncio.Queue(maxsize=_MAX_PENDING)
        self._ended: set[str] = set()  # followed jobs whose terminal event was delivered

    def subscribe(self, job_ids: set[str]) -> Subscription:
        return self.local.subscribe(job_ids)

    def unsubscribe(self, subscription: Subscription) -> None:
        self.local.unsubscribe(subscription)
        self._ended &= self.local.followed()

    def publish(self, event: ResolveEvent) -> None:
        self._deliver(event)
        payload = f"{self.origin} {event.job_id} {json.dumps(_encode(event))}"
        try:
            self._outgoing.put_nowait(payload)
        except asyncio.QueueFull:  # the database is away: the state write tells the rest
            log.debug("event for job=%s not sent to other replicas (backlog)", event.job_id)

    def _deliver(self, event: ResolveEvent) -> None:
        if event.stage.terminal and self.local.follows(event.job_id):
            self._ended.add(event.job_id)
        self.local.publish(event)

    async def run(self, read_description: ReadDescription) -> None:
        """Send, listen and reconcile until cancelled, reconnecting after database errors."""
        await asyncio.gather(self._send_forever(), self._listen_forever(read_description))

    async def _connect(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        conninfo = make_conninfo(self.state.url, **link_timeouts(self.state.url))
        return await psycopg.AsyncConnection.connect(conninfo, autocommit=True, connect_timeout=10)

    async def _send_forever(self) -> None:
        while True:
            try:
                async with await self._connect() as conn:
                    while True:
                        batch = [await self._outgoing.get()]
                        while len(batch) < _BATCH and not self._outgoing.empty():
                            batch.append(self._outgoing.get_nowait())
                        await conn.execute(
                            "SELECT pg_notify(%s, p) FROM unnest(%s::text[])"
                            " WITH ORDINALITY AS t(p, i) ORDER BY i",
                            (EVENTS_CHANNEL, batch),
                        )
            except (psycopg.Error, OSError) as err:
                log.warning("failed to send job events to other replicas: %s", err)
                await asyncio.sleep(1.0)

    async def _listen_forever(self, read_description: ReadDescription) -> None:
        while True:
            try:
                async with await self._connect() as conn:
                    await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    await conn.execute(f"LISTEN {QUEUED_CHANNEL}")
                    self.on_queued("")  # what was queued while not listening
                    while True:
                        await self.reconcile(read_description)
                        async for notice in conn.notifies(timeout=_RECONCILE_INTERVAL):
                            await self._received(notice.channel, notice.payload, read_description)
                        await conn.execute("SELECT 1")  # a dead link fails here, not silently
            except (psycopg.Error, OSError, EnvdError) as err:
                log.warning("lost job events from other replicas, reconnecting: %s", err)
                await asyncio.sleep(1.0)

    async def _received(self, channel: str, payload: str, read: ReadDescription) -> None:
        if channel == QUEUED_CHANNEL:
            self.on_queued(payload)
            return
        origin, job_id, body = payload.split(" ", 2)
        if origin == self.origin or not self.local.follows(job_id):
            return
        event = _decode(job_id, json.loads(body))
        if event.stage is Stage.DONE and event.description is None and event.full_id:
            event = await _with_description(event, read)
        self._deliver(event)

    async def reconcile(self, read_description: ReadDescription) -> None:
        """Terminal events for followed jobs that ended without one reaching this replica."""
        waiting = self.local.followed() - self._ended
        if not waiting:
            return
        for job in await self.state.finished_among(sorted(waiting)):
            if job.job_id not in self._ended:
                self._deliver(await terminal_event(job, read_description))


async def terminal_event(job: Job, read: ReadDescription) -> ResolveEvent:
    """The event that ended `job`, rebuilt from its state (and its description)."""
    if job.error is not None or job.full_id is None:
        err = error_from_dict(job.error or {"message": f"job `{job.job_id}` ended"})
        return job_event(job, Stage.FAILED, outcome=Outcome.FAILED, error=err)
    event = job_event(job, Stage.DONE, outcome=Outcome.RESOLVED, full_id=job.full_id,
                      agent=job.agent_id or "")  # fmt: skip
    return await _with_description(event, read)


async def _with_description(event: ResolveEvent, read: ReadDescription) -> ResolveEvent:
    try:
        description = await asyncio.to_thread(read, event.req_id, event.platform, event.full_id)
    except EnvdError as err:
        return ResolveEvent(event.req_id, event.platform, Stage.FAILED, event.job_id,
                            Outcome.FAILED, error=err)  # fmt: skip
    return ResolveEvent(
        event.req_id, event.platform, event.stage, event.job_id, event.outcome, event.message,
        event.full_id, description, event.error, event.agent,
    )  # fmt: skip


def _encode(event: ResolveEvent) -> dict[str, Any]:
    return {
        "r": event.req_id, "p": event.platform, "s": str(event.stage),
        "o": None if event.outcome is None else str(event.outcome),
        "m": event.message[:_MAX_TEXT], "f": event.full_id, "a": event.agent[:_MAX_TEXT],
        "e": None if event.error is None else {
            k: v[:_MAX_TEXT] for k, v in error_to_dict(event.error).items()
        },
    }  # fmt: skip


def _decode(job_id: str, body: dict[str, Any]) -> ResolveEvent:
    return ResolveEvent(
        req_id=body["r"], platform=body["p"], stage=Stage(body["s"]), job_id=job_id,
        outcome=None if body["o"] is None else Outcome(body["o"]), message=body["m"],
        full_id=body["f"], agent=body["a"],
        error=None if body["e"] is None else error_from_dict(body["e"]),
    )  # fmt: skip
