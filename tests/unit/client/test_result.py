"""The client's test of a complete answer (envd.client.result.judged): unit cases beside the
forged-coordinator end-to-end test (tests/e2e/test_forged_answers.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from envd.client.result import ResolveResult, judged
from envd.description import ResolvedBy, ResolvedPackage, SolverInfo, build_description
from envd.errors import IncompleteAnswerError, JobCancelledError
from envd.progress import Outcome, ResolveEvent, Stage
from envd.spec import CondaDependency, Spec

REQ_ID = "0123456789abcdef0123456789abcdef01234567"


def description() -> dict[str, Any]:
    package = ResolvedPackage(
        kind="conda", name="zlib", version="1.3", build="0", channel="conda-forge",
        url="https://conda.anaconda.org/conda-forge/linux-64/zlib-1.3-0.conda",
        filename="zlib-1.3-0.conda", sha256="a" * 64, md5=None, size=1, subdir="linux-64",
    )  # fmt: skip
    return build_description(
        req_id=REQ_ID, platform="linux-64", spec=Spec(conda=(CondaDependency("zlib", "zlib"),)),
        packages=[package], resolved_at=datetime(2024, 5, 1, tzinfo=UTC),
        resolved_by=ResolvedBy("ada", "agent-1", "h"), solver=SolverInfo("rattler", "0.28.0"),
    )  # fmt: skip


def done(**fields: Any) -> ResolveEvent:
    doc = description()
    values: dict[str, Any] = {"outcome": Outcome.RESOLVED, "full_id": doc["full_id"],
                              "description": doc, **fields}  # fmt: skip
    return ResolveEvent(REQ_ID, "linux-64", Stage.DONE, "job-1", **values)


def problem(event: ResolveEvent) -> str:
    judged_event = judged(event)
    assert judged_event.stage is Stage.FAILED and judged_event.outcome is Outcome.FAILED
    assert isinstance(judged_event.error, IncompleteAnswerError)
    assert judged_event.full_id == "" and judged_event.description is None
    return judged_event.error.message.split(": ", 1)[1]


def test_a_complete_done_event_is_believed_as_it_is() -> None:
    event = done()
    assert judged(event) is event


def test_a_done_event_missing_or_contradicting_what_it_must_carry_failed() -> None:
    assert problem(done(full_id="")) == "a `done` event carries no full_id"
    assert problem(done(description=None)) == "a `done` event carries no description"
    assert problem(done(outcome=None)) == "a `done` event has the outcome `unspecified`"
    assert problem(done(outcome=Outcome.FAILED)) == "a `done` event has the outcome `failed`"
    altered = {**description(), "host": "elsewhere"}
    assert problem(done(description=altered)).startswith("its description is not valid: ")
    other = ResolveEvent("f" * 40, "linux-64", Stage.DONE, "job-1", Outcome.RESOLVED,
                         full_id=description()["full_id"], description=description())  # fmt: skip
    assert problem(other) == f"its description's `req_id` is `{REQ_ID}`, not `{'f' * 40}`"


def test_a_failed_event_is_a_failure_whatever_outcome_it_claims() -> None:
    error = JobCancelledError("cancelled")
    claimed = ResolveEvent(REQ_ID, "linux-64", Stage.FAILED, "job-1", Outcome.RESOLVED,
                           error=error)  # fmt: skip
    assert judged(claimed).outcome is Outcome.FAILED and judged(claimed).error is error
    bare = ResolveEvent(REQ_ID, "linux-64", Stage.FAILED, "job-1", Outcome.RESOLVED)
    assert problem(bare) == "a `failed` event carries no error"


def test_a_platform_the_stream_left_unfinished_failed() -> None:
    result = ResolveResult(REQ_ID, {"linux-64": done()})
    result.end_unfinished(["linux-64", "osx-arm64"])
    assert result.events["linux-64"].stage is Stage.DONE
    ended = result.events["osx-arm64"]
    assert ended.error is not None and ended.error.message == (
        "the coordinator's answer for `osx-arm64` is incomplete: the stream ended while it was "
        "`accepted`"
    )
    assert result.failed


def test_a_result_failed_only_when_a_platform_ended_failed() -> None:
    accepted = ResolveEvent(REQ_ID, "osx-arm64", Stage.ACCEPTED, "job-2")  # --no-wait
    assert not ResolveResult(REQ_ID, {"linux-64": done(), "osx-arm64": accepted}).failed
    assert not ResolveResult(REQ_ID).failed
    # either sign of failure is enough: the stage, or the outcome an event claims
    stage_only = ResolveEvent(REQ_ID, "osx-arm64", Stage.FAILED, "job-2",
                              error=JobCancelledError("cancelled"))  # fmt: skip
    assert ResolveResult(REQ_ID, {"linux-64": done(), "osx-arm64": stage_only}).failed
    outcome_only = done(outcome=Outcome.FAILED)
    assert ResolveResult(REQ_ID, {"linux-64": outcome_only}).failed
    both = ResolveResult(REQ_ID, {"linux-64": done(), "b": outcome_only})
    assert both.job_ids() == ["job-1"] * 2
