"""Injected time and id sources: domain code never calls time.time() or uuid4() itself."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (wall clock: persisted and compared across restarts)."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


def random_id() -> str:
    return uuid.uuid4().hex


def rfc3339(timestamp: float) -> str:
    """UTC, second precision, `Z` suffix: the form descriptions and pointers store."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
