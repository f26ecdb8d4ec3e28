"""Bounded retries with exponential backoff for transient store errors (every backend)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from envd.errors import StoreError

T = TypeVar("T")
log = logging.getLogger("envd.store")
DEFAULT_ATTEMPTS = 5
DEFAULT_BASE_DELAY = 0.2
MAX_DELAY = 5.0


def with_retries(
    operation: Callable[[], T],
    *,
    what: str,
    is_transient: Callable[[BaseException], bool],
    attempts: int = DEFAULT_ATTEMPTS,
    base_delay: float = DEFAULT_BASE_DELAY,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `operation`; retry transient failures with jittered backoff, then raise a
    StoreError saying what failed (`what` names the bucket and key) and why.

    Permanent errors (and envd's own, e.g. PreconditionFailed) propagate at once.
    """
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except StoreError:
            raise
        except Exception as err:
            if not is_transient(err):
                raise
            if attempt == attempts:
                raise StoreError(
                    f"failed to {what} after {attempts} attempts: {err}",
                    hint="the store is unreachable or overloaded; check its endpoint and retry",
                ) from err
            delay = min(MAX_DELAY, base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            log.warning("retrying %s (attempt %d/%d) in %.2fs: %s", what, attempt, attempts,
                        delay, err)  # fmt: skip
            sleep(delay)
    raise AssertionError("unreachable")
