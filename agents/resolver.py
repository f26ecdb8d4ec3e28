"""The agent's resolver seam: a request (spec + platform) in, a `Resolution` out."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from envd.description import ResolvedPackage, SolverInfo
from envd.errors import PackageNotFoundError
from envd.spec import Spec

SUGGESTION_CUTOFF = 0.8  # difflib ratio: one typo in a name of five letters or more


@dataclass(frozen=True, slots=True)
class ResolveRequest:
    """What to resolve: a normalized spec, for one target platform."""

    spec: Spec
    platform: str


@dataclass(frozen=True, slots=True)
class Resolution:
    """The packages a request resolved to (sorted by name, `formats` still empty: the archive
    cache fills them) and the solver that chose them."""

    packages: tuple[ResolvedPackage, ...]
    solver: SolverInfo


class Resolver(Protocol):
    """Turns a `ResolveRequest` into a `Resolution`. `CondaResolver` is the first
    implementation; a PyPI or mixed resolver is the next.

    Owns: reading the indexes the spec names (channels, package indexes) — fetching, caching and
    keeping them warm between requests as it sees fit — and choosing one package per name.
    Nothing else: it writes nothing to the store, fetches no archives, reports no progress.

    Promises:
    - Pure: the answer depends only on the request and the indexes' contents; the only state it
      keeps is its own caches, and no request sees another's effects except that they are warm.
    - Deadlines: no network stage waits unbounded; a stage that runs past its deadline raises
      `StageTimeoutError` naming the stage (e.g. "fetching repodata") and the (redacted) URL,
      and a solve that does raises `SolveTimeoutError`.
    - Cancellable: cancelling the awaiting task stops its network I/O at once and raises
      `CancelledError`. CPU-bound work already handed to a solver cannot be interrupted: it
      ends on its own, at the latest at the solve deadline. Cancellation leaves its caches
      usable.
    - Raises only `EnvdError` leaves (or `CancelledError`): `PackageNotFoundError` naming every
      requested package no index has (see `missing_packages_error`), `UnsatisfiableError`,
      `ChannelError`, `InvalidSpecError`, `StageTimeoutError`, `SolveTimeoutError` — never an
      exception of the library underneath.
    - Safe to call concurrently from tasks of one event loop (one agent runs several jobs).
    """

    async def resolve(self, request: ResolveRequest) -> Resolution:
        """Resolve `request`, or raise one of the errors above."""
        ...


def missing_packages_error(
    missing: Sequence[str],
    *,
    where: str,
    known: Iterable[str],
    requested: Iterable[str] = (),
) -> PackageNotFoundError:
    """The one error for every requested package that no index has: each is named, in the
    order given, and followed by "did you mean …" for those with a close match among `known`
    (names already `requested` are never suggested: `ipython` missing is not `python`)."""
    names = ", ".join(f"`{name}`" for name in missing)
    noun = "package" if len(missing) == 1 else "packages"
    message = f"{noun} {names} not found in {where}"
    suggestions = suggest(missing, known, requested)
    if suggestions:
        message += f"; did you mean {', '.join(f'`{s}`' for s in suggestions)}?"
    return PackageNotFoundError(message, hint="check the names' spelling and the channel list")


def suggest(
    missing: Sequence[str], known: Iterable[str], requested: Iterable[str] = ()
) -> list[str]:
    """The closest known name for each missing one that has one, without repeats."""
    taken = set(requested)
    candidates = sorted(set(known) - taken)
    found: list[str] = []
    for name in missing:
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=SUGGESTION_CUTOFF)
        if close and close[0] not in found:
            found.append(close[0])
    return found
