"""What `resolve` and `wait` exit with, and print, once every platform has ended
(`envd.client.cli._finish`). README: the exit code is non-zero if any platform failed (the JSON
is still printed): 2 bad input, 3 resolution failed, 4 job/agent, 5 coordinator, 6 store, 7 not
allowed. An alias that could not be pointed after a good resolution is said last, and exits
with its own code."""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import replace
from typing import Any

import pytest
from test_result import REQ_ID, done

from envd.aliases import Alias, parse_alias
from envd.client.cli import _finish
from envd.client.parser import build_parser
from envd.client.progress_view import ProgressPrinter
from envd.client.result import ResolveResult, judged
from envd.errors import (
    EnvdError,
    InvalidAliasError,
    JobCancelledError,
    PermissionDeniedError,
    UnsatisfiableError,
)
from envd.progress import Outcome, ResolveEvent, Stage

UNSAT = ResolveEvent(REQ_ID, "osx-arm64", Stage.FAILED, "job-2", Outcome.FAILED,
                     error=UnsatisfiableError("nothing provides zlib 9"))  # fmt: skip
ALIAS = parse_alias("ml_team/train_env:v1")
POINTED = Alias(ALIAS, REQ_ID, {"linux-64": ("f" * 40, "sha256:" + "0" * 64)})


def finish(
    result: ResolveResult,
    *,
    json_out: bool = True,
    quiet: bool = False,
    replay: bool = False,
    pointed: tuple[Alias | None, EnvdError | None] | None = None,
    args: argparse.Namespace | None = None,
) -> tuple[int, str]:
    """The exit code and what the progress printer (stderr) showed; stdout via `capsys`.
    Keywords are passed only when set: the defaults are what `wait` and a streamed
    `resolve` get."""
    progress = io.StringIO()
    args = args or argparse.Namespace(json=json_out, quiet=quiet)
    printer = ProgressPrinter(progress, quiet=quiet, show_errors=args.json, live=False)
    extra: dict[str, Any] = {"replay": True} if replay else {}
    if pointed is not None:
        extra["pointed"] = pointed
    return _finish(result, args, printer, **extra), progress.getvalue()


def test_the_exit_code_is_the_first_failed_platforms_and_the_json_is_still_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert finish(ResolveResult(REQ_ID, {"linux-64": done()}))[0] == 0
    assert json.loads(capsys.readouterr().out)["environments"][0]["outcome"] == "resolved"
    code, _ = finish(ResolveResult(REQ_ID, {"linux-64": done(), "osx-arm64": UNSAT}))
    assert code == 3
    document = json.loads(capsys.readouterr().out)
    assert [e["outcome"] for e in document["environments"]] == ["resolved", "failed"]
    cancelled = replace(UNSAT, platform="win-64", error=JobCancelledError("cancelled"))
    assert finish(ResolveResult(REQ_ID, {"win-64": cancelled, "osx-arm64": UNSAT}))[0] == 4
    # an answer the client could not believe is the coordinator's fault
    assert finish(ResolveResult(REQ_ID, {"linux-64": judged(done(full_id=""))}))[0] == 5
    # a platform that claims failure but carries no error still fails the command
    assert finish(ResolveResult(REQ_ID, {"linux-64": done(outcome=Outcome.FAILED)}))[0] == 3


def test_text_output_exits_the_same_and_quiet_prints_only_the_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = ResolveResult(REQ_ID, {"linux-64": done(), "osx-arm64": UNSAT})
    assert finish(result, json_out=False)[0] == 3
    full = capsys.readouterr().out
    assert "### Environment for linux-64 ###" in full and "nothing provides zlib 9" in full
    assert finish(result, json_out=False, quiet=True)[0] == 3
    quiet = capsys.readouterr().out
    assert "### Environment for" not in quiet and "nothing provides zlib 9" in quiet


def test_wait_which_has_no_quiet_flag_prints_every_environment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = build_parser().parse_args(["wait", "job-1"])
    assert not hasattr(args, "quiet")
    result = ResolveResult(REQ_ID, {"linux-64": done(), "osx-arm64": UNSAT})
    assert finish(result, args=args)[0] == 3
    assert "### Environment for linux-64 ###" in capsys.readouterr().out


def test_an_answer_without_a_stream_still_ends_each_platforms_progress() -> None:
    """A cache hit answered at once (`replay`): the progress shows each platform's end."""
    result = ResolveResult(REQ_ID, {"linux-64": done(), "osx-arm64": UNSAT})
    _, shown = finish(result, replay=True)
    assert "linux-64" in shown and "osx-arm64" in shown
    assert finish(result)[1] == ""  # streamed: the progress already showed them


def test_a_pointed_alias_is_printed_and_the_command_succeeds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = ResolveResult(REQ_ID, {"linux-64": done()})
    assert finish(result, pointed=(POINTED, None))[0] == 0
    document = json.loads(capsys.readouterr().out)
    assert document["alias"] == POINTED.to_json() and "alias_error" not in document
    assert finish(result, json_out=False, pointed=(POINTED, None))[0] == 0
    assert capsys.readouterr().out.endswith(f"alias {ALIAS} → {REQ_ID} (linux-64)\n")
    assert finish(result)[0] == 0  # without --alias: no `alias` field at all
    assert "alias" not in json.loads(capsys.readouterr().out)


def test_an_alias_that_could_not_be_pointed_exits_with_its_error_after_the_result(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = ResolveResult(REQ_ID, {"linux-64": done()})
    refused = PermissionDeniedError("token may not write `ml_team/`", hint="ask for the role")
    assert finish(result, pointed=(None, refused))[0] == 7
    out = capsys.readouterr()
    document: dict[str, Any] = json.loads(out.out)
    assert document["alias"] is None
    assert document["alias_error"]["reference"] == refused.reference
    assert "token may not write `ml_team/`" in out.err
    # a failed resolution is the answer: its code, not the alias's
    unpointed = InvalidAliasError("the resolution did not finish on `osx-arm64`")
    failed = ResolveResult(REQ_ID, {"linux-64": done(), "osx-arm64": UNSAT})
    assert finish(failed, pointed=(None, unpointed))[0] == 3
