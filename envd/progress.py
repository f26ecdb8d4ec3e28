"""What a resolve reports per platform: stages, outcomes and the event carrying them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from envd.errors import EnvdError


class Stage(StrEnum):
    ACCEPTED = "accepted"
    QUEUED = "queued"
    LEASED = "leased"
    RESOLVING = "resolving"
    BUILDING = "building"
    UPLOADING = "uploading"
    DONE = "done"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (Stage.DONE, Stage.FAILED)


class Outcome(StrEnum):
    CACHE_HIT = "cache_hit"
    DEDUP = "dedup"
    RESOLVED = "resolved"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ResolveEvent:
    """One step of one platform's resolution, as clients see it."""

    req_id: str
    platform: str
    stage: Stage
    job_id: str = ""
    outcome: Outcome | None = None
    message: str = ""
    full_id: str = ""
    description: dict[str, Any] | None = None
    error: EnvdError | None = None
    agent: str = ""
