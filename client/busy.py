"""Calls a busy coordinator refused (too many open calls): retried a bounded number of times
with jittered exponential backoff, each wait announced to the person waiting."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from envd.errors import CoordinatorBusyError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BusyRetry:
    """How often and how long to wait for a busy coordinator: with the defaults a call is tried
    8 times over about 15 s, then the refusal is reported."""

    attempts: int = 8
    base_delay: float = 0.25
    max_delay: float = 4.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): doubling up to
        `max_delay`, times 0.5-1.5 so that the clients refused together come back apart."""
        return min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1)) * (0.5 + self.jitter())

    def run(self, call: Callable[[], T], target: str, notice: Callable[[str], None]) -> T:
        """`call()`, again after a backoff each time the coordinator at `target` refuses it
        as busy; the last refusal is raised saying how long it was tried."""
        waited = 0.0
        for attempt in range(1, max(1, self.attempts) + 1):
            try:
                return call()
            except CoordinatorBusyError as err:
                if attempt >= self.attempts:
                    raise CoordinatorBusyError(
                        f"the coordinator at `{target}` refused the call {attempt} times over "
                        f"{waited:.1f} s: it has too many open calls",
                        hint="retry later, or ask its operator to raise `--max-concurrent-calls`",
                    ) from err
                delay = self.delay(attempt)
                notice(
                    f"the coordinator at `{target}` is busy (too many open calls); retrying in "
                    f"{delay:.1f} s (attempt {attempt + 1} of {self.attempts})"
                )
                self.sleep(delay)
                waited += delay
        raise AssertionError("unreachable")
