"""The coordinator's metrics: every family it exports, fed by the job lifecycle (`hook`), by
`MetricsInterceptor` (requests and gRPC calls), and read from its state at scrape time
(queue depth, jobs in flight, connected agents)."""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from envd.clock import Clock
from envd.errors import (
    ChannelError,
    ChannelNotAllowedError,
    EnvdError,
    PermissionDeniedError,
    StoreError,
    UnauthenticatedError,
    all_error_classes,
)
from envd.metrics import (
    SECONDS_BUCKETS,
    Children,
    LoopCounter,
    LoopHistogram,
    LoopMetrics,
    new_registry,
    register_build_info,
)

from .agent_registry import AgentRegistry
from .jobs import Transition
from .state import Job, JobState, JobStatus

log = logging.getLogger("envd.daemon")
REQUEST_OUTCOMES = ("cache_hit", "dedup", "resolved", "failed")
AUTH_CODES = ("UNAUTHENTICATED", "PERMISSION_DENIED")
SCRAPE_WAIT = 2.0  # seconds a scrape waits for the event loop to read its state
# transitions that move a job between queued and in flight, and those that end it
_MOVES = (Transition.CREATED, Transition.LEASED, Transition.COMPLETING, Transition.REQUEUED)
_ENDS = (Transition.COMPLETED, Transition.FAILED, Transition.CANCELLED)


def _kind(cls: type) -> str:
    """`CorruptDescriptionError` → `corrupt_description`."""
    name = cls.__name__.removesuffix("Error")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _error_families() -> dict[str, tuple[str, str]]:
    """envd error reference → (family, kind), for the store and channel error counters."""
    found = {}
    for reference, cls in all_error_classes().items():
        if issubclass(cls, StoreError):
            found[reference] = ("store", _kind(cls))
        elif issubclass(cls, ChannelError | ChannelNotAllowedError):
            found[reference] = ("channel", _kind(cls))
        elif issubclass(cls, UnauthenticatedError | PermissionDeniedError):
            found[reference] = ("auth", _kind(cls))
    return found


ERROR_FAMILIES = _error_families()


@dataclass(slots=True)
class _Tracked:
    platform: str
    status: JobStatus
    queued_at: float


@dataclass(slots=True)
class _Snapshot:
    queued: Tally[str] = field(default_factory=Tally)
    in_flight: Tally[str] = field(default_factory=Tally)
    oldest_wait: dict[str, float] = field(default_factory=dict)
    agents: dict[str, int] = field(default_factory=dict)


class DaemonMetrics:
    """One per coordinator, on a registry of its own (never prometheus-client's global one: a
    test or the embedded default may run several coordinators and agents in one process)."""

    def __init__(self, *, clock: Clock, registry: CollectorRegistry | None = None) -> None:
        self.clock = clock
        self.registry = registry = registry or new_registry()
        register_build_info(registry, "daemon")
        # written on every call: lock-free, the event loop being their only writer
        self.requests = LoopCounter(
            "envd_requests", "Requests answered per platform, by outcome (cache_hit, dedup, "
            "resolved, failed); counted when a Resolve or Wait stream carries its last event.",
            ("outcome", "platform"))  # fmt: skip
        self.request_seconds = LoopHistogram(
            "envd_request_duration_seconds", "From the call's start to a platform's last event.",
            ("outcome", "platform"), SECONDS_BUCKETS)  # fmt: skip
        registry.register(LoopMetrics([self.requests, self.request_seconds]))
        self.queue_wait = Children[Histogram](Histogram(
            "envd_queue_wait_seconds", "Time a job waited queued before an agent leased it.",
            ["platform"], registry=registry, buckets=SECONDS_BUCKETS))  # fmt: skip
        self.lease_expiries = Children[Counter](Counter(
            "envd_lease_expiries", "Leases that ran out without a heartbeat (agent gone or "
            "stalled).", ["platform"], registry=registry))  # fmt: skip
        self.redispatches = Children[Counter](Counter(
            "envd_redispatches", "Leases of a job after its first (it was queued again).",
            ["platform"], registry=registry))  # fmt: skip
        self.revocations = Counter(
            "envd_lease_revocations", "Revocations sent to agents (expired lease, finished job, "
            "late result).", registry=registry)  # fmt: skip
        self.jobs_finished = Children[Counter](Counter(
            "envd_jobs_finished", "Jobs that ended, by status (done, failed, cancelled): the "
            "build outcomes.", ["platform", "status"], registry=registry))  # fmt: skip
        self.errors = {
            family: Children[Counter](Counter(
                f"envd_{family}_errors", f"{what}, by kind.", ["kind"], registry=registry))
            for family, what in (
                ("store", "Store errors that failed a job or a call"),
                ("channel", "Channel errors (unreachable, refused by policy) that failed a job "
                 "or a call"),
                ("auth", "Calls refused as unauthenticated or not permitted"),
            )
        }  # fmt: skip
        self.grpc_started = LoopCounter(
            "envd_grpc_server_started", "gRPC calls started.", ("service", "method")
        )
        self.grpc_handled = LoopCounter(
            "envd_grpc_server_handled", "gRPC calls ended, by status code.",
            ("service", "method", "code"))  # fmt: skip
        self.grpc_seconds = LoopHistogram(
            "envd_grpc_server_handling_seconds", "gRPC call duration (a stream's whole life).",
            ("service", "method"), SECONDS_BUCKETS)  # fmt: skip
        registry.register(LoopMetrics([self.grpc_started, self.grpc_handled, self.grpc_seconds]))
        self._jobs: dict[str, _Tracked] = {}
        self._seen_while_seeding: set[str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._agents: AgentRegistry | None = None
        self._shared: JobState | None = None
        registry.register(_LiveState(self))

    def hook(self, transition: Transition, job: Job, /) -> None:
        """The `JobHook`: runs on the event loop after each transition's state write."""
        if self._seen_while_seeding is not None:
            self._seen_while_seeding.add(job.job_id)
        platform = job.platform
        if transition is Transition.EXPIRED:
            self.lease_expiries(platform).inc()
        elif transition is Transition.LEASED:
            self.queue_wait(platform).observe(max(0.0, self.clock.now() - job.queued_at))
            if job.attempts > 1:
                self.redispatches(platform).inc()
        if transition in _MOVES:
            self._jobs[job.job_id] = _Tracked(platform, job.status, job.queued_at)
        elif transition in _ENDS:
            self._jobs.pop(job.job_id, None)
            self.jobs_finished(platform, job.status.value).inc()
            if job.error:
                self.count_error(job.error.get("reference", ""), "")

    def count_error(self, reference: str, code: str) -> None:
        """A job or call that failed with envd error `reference`, or without one with gRPC
        status `code` (an auth interceptor that is not envd's own)."""
        found = ERROR_FAMILIES.get(reference)
        if found is not None:
            self.errors[found[0]](found[1]).inc()
        elif code in AUTH_CODES:
            self.errors["auth"](code.lower()).inc()

    async def watch(self, agents: AgentRegistry, state: JobState, *, shared: bool = False) -> None:
        """Read the live state on this event loop from now on, starting from the jobs in flight
        that an earlier coordinator left in `state`. A `shared` state (replicas) is read again
        at every scrape instead: the other replicas move its jobs too."""
        self._loop = asyncio.get_running_loop()
        self._agents = agents
        self._shared = state if shared else None
        self._seen_while_seeding = set()
        try:
            for job in await _in_flight(state):
                if job.job_id not in self._seen_while_seeding and job.job_id not in self._jobs:
                    self._jobs[job.job_id] = _Tracked(job.platform, job.status, job.queued_at)
        finally:
            self._seen_while_seeding = None

    def snapshot(self) -> _Snapshot | None:
        """What is queued, in flight and connected, read on the event loop; None when it did
        not answer within `SCRAPE_WAIT` (stopping, or stuck: the scrape still answers)."""
        loop = self._loop
        if loop is None:
            return None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:  # a caller on the loop itself (tests): what the hook has seen
            return self._read()

        async def read() -> _Snapshot:
            if self._shared is not None:
                found = await _in_flight(self._shared)
                self._jobs = {j.job_id: _Tracked(j.platform, j.status, j.queued_at) for j in found}
            return self._read()

        try:
            future = asyncio.run_coroutine_threadsafe(read(), loop)
        except RuntimeError:  # the loop is closed
            return None
        try:
            return future.result(SCRAPE_WAIT)
        except FutureTimeout:
            future.cancel()
            log.warning("metrics: the event loop did not answer within %g s", SCRAPE_WAIT)
        except EnvdError as err:  # the shared state is unreachable: the scrape still answers
            log.warning("metrics: failed to read the shared state: %s", err.message)
        return None

    def _read(self) -> _Snapshot:
        now = self.clock.now()
        snap = _Snapshot()
        for tracked in self._jobs.values():
            platform = tracked.platform
            if tracked.status is JobStatus.QUEUED:
                snap.queued[platform] += 1
                wait = max(0.0, now - tracked.queued_at)
                snap.oldest_wait[platform] = max(snap.oldest_wait.get(platform, 0.0), wait)
            else:
                snap.in_flight[platform] += 1
        if self._agents is not None:  # this coordinator's own sessions (replicas: sum them)
            snap.agents = dict(Tally(p for agent in self._agents.all() for p in agent.platforms))
        return snap


async def _in_flight(state: JobState) -> list[Job]:
    return [
        *await state.queued_before(math.inf),
        *await state.expired(math.inf),  # every leased job
        *await state.completing(),
    ]


_LIVE_FAMILIES = (
    ("envd_queue_depth", "Jobs queued, waiting for an agent (replicas: each reports the "
     "shared state's).", "queued"),
    ("envd_jobs_in_flight", "Jobs leased to an agent or completing.", "in_flight"),
    ("envd_queue_oldest_wait_seconds", "How long the oldest queued job has waited.",
     "oldest_wait"),
    ("envd_agents_connected", "Agents connected to this coordinator, by platform they serve.",
     "agents"),
)  # fmt: skip


class _LiveState(Collector):
    """Gauges read at scrape time; a platform seen once stays listed (at 0 when idle)."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        self.metrics = metrics
        self.platforms: set[str] = set()

    def describe(self) -> Iterable[Metric]:
        return list(self._families(None))

    def collect(self) -> Iterable[Metric]:
        snap = self.metrics.snapshot()
        if snap is not None:
            self.platforms.update(snap.queued, snap.in_flight, snap.agents)
        return list(self._families(snap))

    def _families(self, snap: _Snapshot | None) -> Iterator[Metric]:
        for name, help_text, attribute in _LIVE_FAMILIES:
            family = GaugeMetricFamily(name, help_text, labels=["platform"])
            if snap is not None:
                found: Mapping[str, float] = getattr(snap, attribute)
                for platform in sorted(self.platforms):
                    family.add_metric([platform], float(found.get(platform, 0)))
            yield family
