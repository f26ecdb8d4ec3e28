"""`resolve --lock` modes as decisions (pure), the lock's format, and the one writer call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from envd.client.lock_readers import read_lock
from envd.client.lock_status import LockState, LockStatus
from envd.client.lock_use import (
    LockMode,
    LockPlan,
    fix_command,
    lock_format,
    plan,
    write_lock_files,
)
from envd.client.result import ResolveResult
from envd.errors import StaleLockError
from envd.progress import Outcome, ResolveEvent, Stage
from harness import ROOT

FIX = "envd-client resolve -f environment.yml --lock conda-lock.yml"
UP = LockStatus(LockState.UP_TO_DATE)
STALE = LockStatus(
    LockState.OUT_OF_DATE,
    "Dependency 'packaging' is required but not found in the lock for platform 'linux-64'",
)
MISSING = LockStatus(LockState.MISSING, "Lock file 'conda-lock.yml' does not exist")


@pytest.mark.parametrize(
    ("mode", "status", "expected"),
    [
        (LockMode.AUTO, UP, LockPlan(use=True, status=UP)),
        (LockMode.AUTO, STALE, LockPlan(use=False, status=STALE)),
        (LockMode.AUTO, MISSING, LockPlan(use=False, status=MISSING)),
        (LockMode.LOCKED, UP, LockPlan(use=True, status=UP)),
        (LockMode.FROZEN, STALE, LockPlan(use=True, status=None)),
        (LockMode.NO_LOCK, UP, LockPlan(use=False, status=None)),
        (LockMode.NO_LOCK, MISSING, LockPlan(use=False, status=None)),
    ],
)
def test_plan(mode: LockMode, status: LockStatus, expected: LockPlan) -> None:
    assert plan(mode, status, FIX) == expected


def test_locked_fails_on_a_stale_or_missing_lock_naming_the_fix() -> None:
    with pytest.raises(StaleLockError, match=r"is out-of-date and `--locked` does not update "
                       r"it: Dependency 'packaging' is required") as caught:  # fmt: skip
        plan(LockMode.LOCKED, STALE, FIX)
    assert caught.value.hint == f"update it with `{FIX}`"
    with pytest.raises(StaleLockError, match=r"is missing"):
        plan(LockMode.LOCKED, MISSING, FIX)
    with pytest.raises(StaleLockError, match=r"`--frozen` uses the lock as it is, but there is"):
        plan(LockMode.FROZEN, MISSING, FIX)


def test_fix_command_drops_the_flags_that_keep_the_lock() -> None:
    argv = ["resolve", "-f", "my env.yml", "--lock", "conda-lock.yml", "--locked"]
    assert fix_command(argv) == "envd-client resolve -f 'my env.yml' --lock conda-lock.yml"


def test_lock_format_kept_or_from_the_name(tmp_path: Path) -> None:
    pixi = ROOT / "tests" / "fixtures" / "locks" / "pixi" / "geos-rs" / "pixi.lock"
    assert lock_format(pixi, read_lock(pixi)) == "pixi"
    assert lock_format(tmp_path / "pixi.lock", None) == "pixi"
    assert lock_format(tmp_path / "env-{platform}.lock", None) == "explicit"
    assert lock_format(tmp_path / "conda-lock.yml", None) == "conda-lock"


def result(failed: bool = False) -> ResolveResult:
    stage, outcome = (Stage.FAILED, Outcome.FAILED) if failed else (Stage.DONE, Outcome.RESOLVED)
    description = None if failed else {"req_id": "a" * 40, "platform": "linux-64"}
    event = ResolveEvent("a" * 40, "linux-64", stage, outcome=outcome, description=description)
    return ResolveResult("a" * 40, {"linux-64": event})


def test_the_writer_gets_every_description_and_nothing_on_failure(tmp_path: Path) -> None:
    # records the call (the real writer's output is tested in test_no_lock_resolves_and_rewrites)
    calls: list[tuple[Any, ...]] = []

    def writer(descriptions: Any, fmt: str, path: Path, *, req_id: str, alias: Any) -> list[Path]:
        calls.append((descriptions, fmt, path, req_id, alias))
        return [path]

    path = tmp_path / "conda-lock.yml"
    assert write_lock_files(result(), "conda-lock", path, alias="t/e", writer=writer) == [path]
    assert calls == [({"linux-64": {"req_id": "a" * 40, "platform": "linux-64"}}, "conda-lock", path,
                      "a" * 40, "t/e")]  # fmt: skip
    assert write_lock_files(result(True), "conda-lock", path, alias=None, writer=writer) == []
    assert len(calls) == 1
