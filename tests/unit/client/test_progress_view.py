"""Progress words: job words while a platform runs, outcome words once it has ended."""

from __future__ import annotations

import io
import sys

import pytest

from envd.client.colour import Palette
from envd.client.progress_view import ProgressPrinter, seconds
from envd.errors import PackageNotFoundError
from envd.progress import Outcome, ResolveEvent, Stage

REQ = "a" * 40


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def event(stage: Stage, outcome: Outcome | None = None, **kw: str) -> ResolveEvent:
    return ResolveEvent(REQ, kw.pop("platform", "linux-64"), stage, outcome=outcome, **kw)  # type: ignore[arg-type]


def test_lines_without_a_terminal() -> None:
    out, clock = io.StringIO(), Clock()
    printer = ProgressPrinter(out, live=False, clock=clock, palette=Palette(False))
    with printer:
        printer(event(Stage.ACCEPTED, Outcome.RESOLVED, job_id="job-1"))
        clock.now += 1.25
        printer(event(Stage.QUEUED, Outcome.RESOLVED, job_id="job-1", message="queued here"))
        printer(event(Stage.ACCEPTED, Outcome.DEDUP, job_id="job-2", platform="osx-arm64"))
        clock.now += 2
        printer(event(Stage.DONE, Outcome.RESOLVED, job_id="job-1", agent="a1"))
        printer(event(Stage.DONE, Outcome.DEDUP, job_id="job-2", platform="osx-arm64"))
        printer(event(Stage.DONE, Outcome.CACHE_HIT, platform="win-64"))
    assert out.getvalue() == (
        "linux-64: new job job-1: accepted (0.0 s)\n"
        "linux-64: new job job-1: queued here (1.2 s)\n"
        "osx-arm64: joined a job in flight job-2: accepted (1.2 s)\n"
        "linux-64: resolved after 3.2 s on agent `a1`\n"
        "osx-arm64: dedup after 3.2 s\n"
        "win-64: cache_hit\n"
    )
    assert printer.elapsed == {"linux-64": 3.25, "osx-arm64": 3.25, "win-64": 3.25}


def test_a_failure_shows_its_error_only_when_asked() -> None:
    failed = event(Stage.FAILED, Outcome.FAILED, error=PackageNotFoundError("no `x`"))  # type: ignore[arg-type]
    for show, tail in ((False, ""), (True, ": no `x`")):
        out = io.StringIO()
        printer = ProgressPrinter(out, live=False, clock=Clock(), show_errors=show)
        printer(failed)
        assert out.getvalue() == f"linux-64: failed after 0.0 s{tail}\n"


def test_following_jobs_and_quiet() -> None:
    out = io.StringIO()
    printer = ProgressPrinter(out, live=False, clock=Clock(), following=True)
    printer(event(Stage.LEASED, Outcome.RESOLVED, job_id="job-1", message="leased by agent `a`"))
    assert out.getvalue() == "linux-64: following job job-1: leased by agent `a` (0.0 s)\n"
    quiet = io.StringIO()
    silent = ProgressPrinter(quiet, live=False, clock=Clock(), quiet=True)
    silent(event(Stage.DONE, Outcome.CACHE_HIT))
    assert quiet.getvalue() == "" and silent.elapsed == {"linux-64": 0.0}


def test_a_terminal_redraws_running_lines_in_place_and_keeps_ended_ones() -> None:
    out, clock = io.StringIO(), Clock()
    printer = ProgressPrinter(out, live=True, clock=clock, palette=Palette(True))
    printer(event(Stage.ACCEPTED, Outcome.RESOLVED, job_id="job-1"))
    clock.now += 0.5
    printer(event(Stage.ACCEPTED, Outcome.DEDUP, job_id="job-2", platform="osx-arm64"))
    printer(event(Stage.DONE, Outcome.RESOLVED, job_id="job-1"))
    printer.notice("lost the coordinator")
    assert out.getvalue() == (
        "linux-64: new job job-1: accepted (0.0 s)\n"
        "\033[1F\033[J"
        "linux-64: new job job-1: accepted (0.5 s)\n"
        "osx-arm64: joined a job in flight job-2: accepted (0.5 s)\n"
        "\033[2F\033[J"
        "linux-64: \033[32;1mresolved\033[0m after 0.5 s\n"
        "osx-arm64: joined a job in flight job-2: accepted (0.5 s)\n"
        "\033[1F\033[J"
        "\033[33mlost the coordinator\033[0m\n"
        "osx-arm64: joined a job in flight job-2: accepted (0.5 s)\n"
    )


def test_seconds() -> None:
    assert [seconds(s) for s in (0.04, 12.36, 75.2)] == ["0.0 s", "12.4 s", "1 min 15 s"]


def test_progress_goes_to_sys_stderr_as_it_is_when_the_printer_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A program embedding the client (or a test) that redirects `sys.stderr` gets the
    progress, as `print(..., file=sys.stderr)` output goes there."""
    redirected = io.StringIO()
    monkeypatch.setattr(sys, "stderr", redirected)
    printer = ProgressPrinter(live=False, clock=Clock())
    printer(event(Stage.DONE, Outcome.CACHE_HIT))
    assert redirected.getvalue().startswith("linux-64"), redirected.getvalue()
