"""What a resolve or wait gives back: per platform, the event it ended with (no gRPC here), and
the test that an answer is complete before the client believes it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from envd.errors import CorruptDescriptionError, IncompleteAnswerError
from envd.progress import Outcome, ResolveEvent, Stage

_HINT = (
    "the coordinator (or an agent it trusted) sent an answer envd never sends; resolve again, "
    "and tell the coordinator's operator if it persists"
)


@dataclass(slots=True)
class ResolveResult:
    """Per platform, the terminal event (done or failed), or the accepted one with --no-wait."""

    req_id: str = ""
    events: dict[str, ResolveEvent] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(
            e.outcome is Outcome.FAILED or e.stage is Stage.FAILED for e in self.events.values()
        )

    def job_ids(self) -> list[str]:
        return [e.job_id for e in self.events.values() if e.job_id]

    def end_unfinished(self, platforms: Iterable[str]) -> None:
        """After a stream that had to end every platform: a platform left without a terminal
        event (or without any event) failed, saying so."""
        for platform in dict.fromkeys([*platforms, *self.events]):
            event = self.events.get(platform)
            if event is None:
                event = ResolveEvent(self.req_id, platform, Stage.ACCEPTED)
            if not event.stage.terminal:
                self.events[platform] = incomplete(
                    event, f"the stream ended while it was `{event.stage}`"
                )


def judged(event: ResolveEvent) -> ResolveEvent:
    """`event` if it carries what its stage promises, else a failed event naming what is
    missing: a `done` event needs a full_id, a valid description of that full_id (for the
    event's req_id and platform) and an outcome that is not `failed`; a `failed` event needs
    its error and always has the outcome `failed`."""
    if event.stage is Stage.FAILED:
        if event.error is None:
            return incomplete(event, "a `failed` event carries no error")
        return event if event.outcome is Outcome.FAILED else replace(event, outcome=Outcome.FAILED)
    if event.stage is not Stage.DONE:
        return event
    problem = _done_problem(event)
    return event if problem is None else incomplete(event, problem)


def incomplete(event: ResolveEvent, problem: str) -> ResolveEvent:
    platform = f"`{event.platform}`" if event.platform else "a platform"
    error = IncompleteAnswerError(
        f"the coordinator's answer for {platform} is incomplete: {problem}", hint=_HINT
    )
    # what it did carry is not believed either: no full_id or description is shown
    return replace(
        event, stage=Stage.FAILED, outcome=Outcome.FAILED, error=error, full_id="", description=None
    )


def _done_problem(event: ResolveEvent) -> str | None:
    from envd.description import validate_description  # the schema's imports: only here
    from envd.ids import is_id

    if event.outcome in (None, Outcome.FAILED):
        return f"a `done` event has the outcome `{event.outcome or 'unspecified'}`"
    if not is_id(event.full_id):
        return "a `done` event carries no full_id"
    if event.description is None:
        return "a `done` event carries no description"
    try:
        doc = validate_description(event.description)
    except CorruptDescriptionError as err:
        return f"its description is not valid: {err.message}"
    for name, expected in (
        ("full_id", event.full_id), ("req_id", event.req_id), ("platform", event.platform)
    ):  # fmt: skip
        if doc[name] != expected:
            return f"its description's `{name}` is `{doc[name]}`, not `{expected}`"
    return None
