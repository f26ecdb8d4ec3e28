"""`resolve --lock PATH`: keep a lock current — use it when it satisfies the spec, else re-solve
and rewrite it (`--locked` refuses a stale lock, `--frozen` uses it as is, `--no-lock` always
re-solves and rewrites)."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from envd.errors import StaleLockError
from envd.spec import RawSpec, Spec, normalize_spec

from .lock_readers import Lock, read_lock
from .lock_status import LockState, LockStatus, lock_status
from .result import ResolveResult

# write_lock(descriptions, fmt, path, *, req_id, alias) -> list[Path]
LockWriter = Callable[..., list[Path]]


class LockMode(StrEnum):
    AUTO = "auto"  # use an up-to-date lock; re-solve and rewrite a stale or missing one
    LOCKED = "locked"  # use an up-to-date lock; fail on a stale or missing one
    FROZEN = "frozen"  # use the lock as it is, without checking it against the spec
    NO_LOCK = "no-lock"  # always re-solve and rewrite


@dataclass(frozen=True, slots=True)
class LockPlan:
    """What `resolve --lock` does: register the lock (`use`), or resolve the spec and then
    rewrite the lock; `status` is the lock's against the spec (None when not checked)."""

    use: bool
    status: LockStatus | None


def lock_mode(args: argparse.Namespace) -> LockMode:
    chosen = [m for m, on in ((LockMode.LOCKED, args.locked), (LockMode.FROZEN, args.frozen),
                              (LockMode.NO_LOCK, args.no_lock)) if on]  # fmt: skip
    if len(chosen) > 1:
        from envd.errors import InvalidSpecError

        raise InvalidSpecError(
            "give at most one of `--locked`, `--frozen` and `--no-lock`",
            hint="`--locked` fails on a stale lock, `--frozen` uses it as is, `--no-lock` "
            "re-solves",
        )
    return chosen[0] if chosen else LockMode.AUTO


def plan(mode: LockMode, status: LockStatus, fix_command: str) -> LockPlan:
    """The decision alone (pure): `fix_command` is what brings a stale lock up to date."""
    if mode is LockMode.NO_LOCK:
        return LockPlan(use=False, status=None)
    if mode is LockMode.FROZEN:
        if status.status is LockState.MISSING:
            raise StaleLockError(
                f"`--frozen` uses the lock as it is, but there is none: {status.reason}",
                hint=f"create it with `{fix_command}`",
            )
        return LockPlan(use=True, status=None)
    if status.status is LockState.UP_TO_DATE:
        return LockPlan(use=True, status=status)
    if mode is LockMode.LOCKED:
        raise StaleLockError(
            f"the lock is {status.status} and `--locked` does not update it: {status.reason}",
            hint=f"update it with `{fix_command}`",
        )
    return LockPlan(use=False, status=status)


def fix_command(argv: Sequence[str]) -> str:
    """The command line the user ran, without the flags that keep a lock from being updated."""
    kept = [a for a in argv if a not in ("--locked", "--frozen", "--no-lock")]
    return "envd-client " + " ".join(shlex.quote(a) for a in kept)


@dataclass(frozen=True, slots=True)
class LockedRequest:
    """The request `resolve --lock` sends, and how to rewrite the lock afterwards (None: the
    lock was used as is)."""

    spec: Spec
    platforms: list[str]
    rewrite: Callable[[ResolveResult], list[Path]] | None


def lock_request(
    args: argparse.Namespace, spec: Spec, platforms: list[str], argv: Sequence[str]
) -> LockedRequest:
    mode = lock_mode(args)
    if args.lock is None:
        from envd.errors import InvalidSpecError

        raise InvalidSpecError(
            f"`--{mode}` needs the lock file it is about", hint="add `--lock PATH`"
        )
    path: Path = args.lock
    lock = read_lock(path) if path.exists() and mode is not LockMode.NO_LOCK else None
    status = lock_status(spec, platforms, lock, path)
    decided = plan(mode, status, fix_command(argv))
    if decided.use and lock is not None:
        # a platform the lock lacks (`--frozen` checks nothing) is refused by the coordinator
        locked = normalize_spec(RawSpec(locked=list(lock.platforms)))
        return LockedRequest(locked, platforms, None)
    fmt = lock_format(path, lock)

    def rewrite(result: ResolveResult) -> list[Path]:
        return write_lock_files(result, fmt, path, alias=args.alias)

    return LockedRequest(spec, platforms, rewrite)


def lock_format(path: Path, lock: Lock | None) -> str:
    """The format to rewrite in: the lock's own, else what its name says."""
    if lock is not None:
        return str(lock.format)  # LockFormat's values are the writer's format names
    if path.name.endswith("pixi.lock"):
        return "pixi"
    return "explicit" if "{platform}" in path.name else "conda-lock"


def write_lock_files(
    result: ResolveResult, fmt: str, path: Path, *, alias: str | None,
    writer: LockWriter | None = None,
) -> list[Path]:  # fmt: skip
    """The one call into the lock writer (`write_lock` of `envd-client lock`); nothing is
    written unless every platform resolved."""
    if result.failed:
        return []
    descriptions: dict[str, dict[str, Any]] = {
        platform: e.description
        for platform, e in result.events.items()
        if e.description is not None
    }
    if writer is None:
        from .lock_export import write_lock

        writer = write_lock
    return writer(descriptions, fmt, path, req_id=result.req_id, alias=alias)
