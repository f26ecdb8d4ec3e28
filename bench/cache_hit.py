"""Cache-hit `Resolve` through the coordinator vs reading the same answer from the store."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from bench.stats import Latency, Throughput
from envd.catalog import Catalog
from envd.client.api import EnvdClient
from envd.progress import Outcome
from envd.spec import Spec
from envd.store.url import open_store


class Caller(Protocol):
    """One requester: a connection (or store handle) it keeps, and the request it repeats."""

    def __call__(self) -> None: ...

    def close(self) -> None: ...


class EnvdCacheHit:
    """A client asking for an environment the store already has: what every user after the
    first sees."""

    def __init__(self, target: str, spec: Spec, platform: str) -> None:
        self.client = EnvdClient(target)
        self.spec = spec
        self.platform = platform

    def __call__(self) -> None:
        event = self.client.resolve(self.spec, [self.platform], no_archives=True).events.get(
            self.platform
        )
        if event is None or event.outcome is not Outcome.CACHE_HIT:
            outcome = None if event is None else event.outcome
            raise RuntimeError(
                f"failed to benchmark cache hits: `Resolve` answered `{outcome}`, not a cache hit"
            )

    def close(self) -> None:
        self.client.close()


class RawStoreRead:
    """The floor for a cache hit: the default pointer and its description, read in-process
    from the local store with no gRPC, coordinator or event stream in between — as a reader
    going to the store itself would, so without the coordinator's in-memory description cache
    (files read, parsed and validated on every call)."""

    def __init__(self, store_url: str, req_id: str, platform: str) -> None:
        self.catalog = Catalog(open_store(store_url), cache_size=0)
        self.req_id = req_id
        self.platform = platform

    def __call__(self) -> None:
        if self.catalog.default_description(self.req_id, self.platform) is None:
            raise RuntimeError(
                f"failed to benchmark store reads: no default for `{self.req_id}` on "
                f"`{self.platform}`"
            )

    def close(self) -> None:
        return


def latency(caller: Caller, requests: int, warmup: int) -> Latency:
    """One request at a time, so each sample is a request's own latency, not queueing."""
    for _ in range(warmup):
        caller()
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        caller()
        samples.append(time.perf_counter() - start)
    return Latency.of(samples)


def throughput(make_caller: Callable[[], Caller], requests: int, threads: int) -> Throughput:
    """`threads` callers, each with its own connection (as separate users would have), share
    `requests`; the clock runs from a common start until the last one finishes."""
    callers = [make_caller() for _ in range(threads)]
    try:
        for caller in callers:
            caller()  # connect and warm up outside the timed window
        shares = [requests // threads + (i < requests % threads) for i in range(threads)]
        start_line = threading.Barrier(threads + 1)
        errors: list[BaseException] = []
        workers = [
            threading.Thread(target=_work, args=(c, n, start_line, errors), name=f"bench-{i}")
            for i, (c, n) in enumerate(zip(callers, shares, strict=True))
        ]
        for worker in workers:
            worker.start()
        start_line.wait()
        start = time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - start
    finally:
        for caller in callers:
            caller.close()
    if errors:
        raise errors[0]
    return Throughput(requests / elapsed, requests, threads)


def _work(
    caller: Caller, count: int, start_line: threading.Barrier, errors: list[BaseException]
) -> None:
    start_line.wait()
    try:
        for _ in range(count):
            caller()
    except BaseException as err:  # thread boundary: the main thread re-raises it
        errors.append(err)
