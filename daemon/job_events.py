"""Fan-out of job events to every request following the job: the protocol and its in-process
implementation (a PostgreSQL one with LISTEN/NOTIFY serves several coordinators)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Protocol

from envd.progress import ResolveEvent, Stage

from .state import Job

# progress events kept per subscription; older ones are dropped (the latest state still
# arrives), terminal events are never dropped
MAX_PENDING_PROGRESS = 64


def job_event(job: Job, stage: Stage, **fields: Any) -> ResolveEvent:
    """An event about `job`: the one place ids and platform are copied onto an event."""
    return ResolveEvent(
        req_id=job.req_id, platform=job.platform, stage=stage, job_id=job.job_id, **fields
    )


class Subscription:
    """Events of the jobs one request follows. Bounded: at most MAX_PENDING_PROGRESS
    non-terminal events wait (the oldest go first); each job's terminal event always waits."""

    def __init__(self, job_ids: set[str]) -> None:
        self.job_ids = frozenset(job_ids)
        self._progress: deque[ResolveEvent] = deque(maxlen=MAX_PENDING_PROGRESS)
        self._terminal: deque[ResolveEvent] = deque()
        self._ready = asyncio.Event()
        self.dropped = 0

    def put(self, event: ResolveEvent) -> None:
        if event.stage.terminal:
            self._terminal.append(event)
        else:
            if len(self._progress) == self._progress.maxlen:
                self.dropped += 1
            self._progress.append(event)
        self._ready.set()

    async def get(self) -> ResolveEvent:
        """The next event: progress in order first, then terminal ones."""
        while not self._progress and not self._terminal:
            self._ready.clear()
            await self._ready.wait()
        if self._progress:
            return self._progress.popleft()
        return self._terminal.popleft()


class JobEvents(Protocol):
    """Delivers each event published for a job to every subscription following it.

    Promises: a subscription gets every terminal event published after `subscribe` returned,
    and the latest progress (older progress may be dropped under load); `publish` never blocks
    and never raises for a slow or gone subscriber. Callers re-read the job's state after
    subscribing, so an event published before the subscription is not needed.
    """

    def subscribe(self, job_ids: set[str]) -> Subscription: ...
    def unsubscribe(self, subscription: Subscription) -> None: ...
    def publish(self, event: ResolveEvent) -> None: ...


class LocalJobEvents:
    """Events within one coordinator process."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}

    def subscribe(self, job_ids: set[str]) -> Subscription:
        subscription = Subscription(job_ids)
        for job_id in job_ids:
            self._subscribers.setdefault(job_id, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        for job_id in subscription.job_ids:
            subscribers = self._subscribers.get(job_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[job_id]

    def publish(self, event: ResolveEvent) -> None:
        for subscription in list(self._subscribers.get(event.job_id, ())):
            subscription.put(event)

    def follows(self, job_id: str) -> bool:
        return job_id in self._subscribers

    def followed(self) -> set[str]:
        """Jobs with at least one subscriber."""
        return set(self._subscribers)

    def following(self) -> int:
        """Jobs with at least one subscriber (for tests and metrics)."""
        return len(self._subscribers)
