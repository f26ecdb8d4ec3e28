"""Coordinator replicas on one shared state: what each needs besides the job table."""

from __future__ import annotations

from typing import Protocol

from .agent_registry import AgentRegistry
from .dispatcher import Dispatcher
from .job_events import JobEvents
from .jobs import JobLifecycle


class Replicas(Protocol):
    """What several coordinators serving one fleet share beyond `JobState` (PostgreSQL).

    Owns: this replica's liveness among the others; the agent registry view (`registry`: the
    agents connected here, plus those connected to other replicas, so "an agent serves X"
    holds fleet-wide); job events between replicas (`events`); and completions a dead replica
    left half done. Promises: `run` does work bounded by this replica's own agents and
    followed jobs per round; a transition raced by several replicas (expiry, the no-agent
    timeout, taking over a completion) is won by one conditional state write, and only the
    winner publishes, logs and calls the hook, so each happens once fleet-wide; `run` ends
    only when cancelled, removing this replica's rows (a replica killed with -9 is recognized
    by its rows expiring after the lease TTL).
    """

    @property
    def registry(self) -> AgentRegistry: ...
    @property
    def events(self) -> JobEvents: ...

    async def run(self, jobs: JobLifecycle, dispatcher: Dispatcher) -> None: ...
