"""In-memory fan-out of job events to every request attached to the job."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from envd.progress import ResolveEvent, Stage

from .state import Job


def job_event(job: Job, stage: Stage, **fields: Any) -> ResolveEvent:
    """An event about `job`: the one place ids and platform are copied onto an event."""
    return ResolveEvent(
        req_id=job.req_id, platform=job.platform, stage=stage, job_id=job.job_id, **fields
    )


class JobEvents:
    """Subscribers get every event published for a job after they subscribed."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[ResolveEvent]]] = defaultdict(set)

    def subscribe(
        self, job_id: str, queue: asyncio.Queue[ResolveEvent] | None = None
    ) -> asyncio.Queue[ResolveEvent]:
        """Deliver the job's events into `queue` (a new one unless given: one request may
        follow several jobs through one queue)."""
        target: asyncio.Queue[ResolveEvent] = queue if queue is not None else asyncio.Queue()
        self._subscribers[job_id].add(target)
        return target

    def unsubscribe(self, job_id: str, queue: asyncio.Queue[ResolveEvent]) -> None:
        subscribers = self._subscribers.get(job_id)
        if subscribers is not None:
            subscribers.discard(queue)
            if not subscribers:
                del self._subscribers[job_id]

    def publish(self, job_id: str, event: ResolveEvent) -> None:
        for queue in list(self._subscribers.get(job_id, ())):
            queue.put_nowait(event)
