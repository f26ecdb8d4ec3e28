"""What a resolve or wait gives back: per platform, the event it ended with (no gRPC here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from envd.progress import Outcome, ResolveEvent


@dataclass(slots=True)
class ResolveResult:
    """Per platform, the terminal event (done or failed), or the accepted one with --no-wait."""

    req_id: str = ""
    events: dict[str, ResolveEvent] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(e.outcome is Outcome.FAILED for e in self.events.values())

    def job_ids(self) -> list[str]:
        return [e.job_id for e in self.events.values() if e.job_id]
