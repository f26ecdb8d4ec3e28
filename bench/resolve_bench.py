"""Resolves through a real embedded coordinator and agent: cold (fresh home) and warm (force)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from envd.client.api import EnvdClient
from envd.embedded import EmbeddedCoordinator
from envd.progress import Outcome
from envd.spec import Spec


def timed_resolve(
    client: EnvdClient, spec: Spec, platform: str, *, force: bool, expect: Outcome
) -> tuple[float, str]:
    """One `Resolve` end to end (request, job, lease, solve, description, events); the
    outcome is checked so a cache hit can never pass for a solve, or the reverse."""
    start = time.perf_counter()
    result = client.resolve(spec, [platform], force=force, no_archives=True)
    elapsed = time.perf_counter() - start
    event = result.events.get(platform)
    outcome = None if event is None else event.outcome
    if outcome is not expect:
        detail = "" if event is None or event.error is None else f": {event.error}"
        raise RuntimeError(
            f"failed to benchmark resolve on `{platform}`: expected outcome `{expect}`, "
            f"got `{outcome}`{detail}"
        )
    return elapsed, result.req_id


def envd_cold(spec: Spec, platform: str, repeats: int, scratch: Path) -> list[float]:
    """Each sample gets a new home: empty store, state and agent repodata cache, new agent.
    Startup and the client's connect are untimed; only the `Resolve` call is."""
    timings = []
    for index in range(repeats):
        home = Path(tempfile.mkdtemp(prefix=f"cold{index}-", dir=scratch))
        with EmbeddedCoordinator(home) as target, EnvdClient(target) as client:
            client.info()
            elapsed, _ = timed_resolve(client, spec, platform, force=False, expect=Outcome.RESOLVED)
            timings.append(elapsed)
    return timings


def envd_warm(client: EnvdClient, spec: Spec, platform: str, repeats: int) -> list[float]:
    """`force=True` skips the store's answer, so the agent solves again, on the repodata its
    Gateway already holds from the first resolve."""
    return [
        timed_resolve(client, spec, platform, force=True, expect=Outcome.RESOLVED)[0]
        for _ in range(repeats)
    ]
