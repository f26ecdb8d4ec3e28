"""Limits on what one request may ask for, checked before anything is stored: no request can
hurt the others (a job an agent can't receive, megabytes of spec per job, NUL bytes, values
the solver would choke on)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.protobuf.message import Message

from envd.errors import InvalidSpecError, RequestTooLargeError
from envd.platforms import effective_virtual_packages, rattler_virtual_packages
from envd.spec import Spec
from envd.spec_input import MAX_DEPENDENCIES

MAX_PLATFORMS = 32
MAX_STRING_CHARS = 2048  # any one string: a package spec, a channel URL, a name
# the canonical spec stored with each job and sent in its assignment: far below the 4 MiB an
# agent's gRPC stream accepts, so no accepted job can be too large for its agent
MAX_CANONICAL_SPEC_BYTES = 256 * 1024
# an imported lock carries every package of every platform (a 900-package lock of one platform
# is ~0.4 MB canonical): its own cap, still well under what an agent's stream accepts
MAX_LOCKED_SPEC_BYTES = 1536 * 1024
MAX_LOCKED_PACKAGES = 8000  # over every platform of one lock
AGENT_MESSAGE_LIMIT = 4 * 1024 * 1024
assert max(MAX_CANONICAL_SPEC_BYTES, MAX_LOCKED_SPEC_BYTES) * 2 < AGENT_MESSAGE_LIMIT


def check_resolve_request(request: Any) -> None:
    """Counts and string contents of a `ResolveRequest`, before it is normalized."""
    if not request.platforms:
        raise InvalidSpecError("no target platform given", hint="pass `--arch PLATFORM`")
    if len(request.platforms) > MAX_PLATFORMS:
        raise RequestTooLargeError(
            f"{len(request.platforms)} platforms requested; the limit is {MAX_PLATFORMS}"
        )
    count = len(request.spec.conda) + len(request.spec.pypi)
    if count > MAX_DEPENDENCIES:
        raise RequestTooLargeError(
            f"{count} dependencies is over the limit of {MAX_DEPENDENCIES}",
            hint="split the request into smaller environments",
        )
    locked = sum(len(lp.packages) for lp in request.spec.locked)
    if locked > MAX_LOCKED_PACKAGES:
        raise RequestTooLargeError(
            f"the lock pins {locked} packages over its platforms; the limit is "
            f"{MAX_LOCKED_PACKAGES}",
            hint="import fewer platforms of it (`--platform`), or split the environment",
        )
    for where, text in _strings(request, ""):
        if "\x00" in text:
            raise InvalidSpecError(f"`{where}` contains a NUL byte", hint="remove it")
        if len(text) > MAX_STRING_CHARS:
            raise RequestTooLargeError(
                f"`{where}` is {len(text)} characters long; the limit is {MAX_STRING_CHARS}",
                hint="shorten the value",
            )


def check_spec(spec: Spec, canonical: bytes, platforms: list[str]) -> None:
    """What normalization produced: its stored size, and virtual packages the solver takes."""
    limit = MAX_LOCKED_SPEC_BYTES if spec.locked else MAX_CANONICAL_SPEC_BYTES
    if len(canonical) > limit:
        what = "a platform's packages of the lock are" if spec.locked else "the normalized spec is"
        raise RequestTooLargeError(
            f"{what} {len(canonical)} bytes; the limit is {limit}",
            hint="split the request into smaller environments",
        )
    if spec.locked:
        _check_locked_targets(spec, platforms)
    for platform in platforms:
        values = effective_virtual_packages(platform, dict(spec.virtual_packages))
        try:
            rattler_virtual_packages(values)
        except Exception as err:  # py-rattler's parse errors: each a different class
            raise InvalidSpecError(
                f"invalid virtual package value for `{platform}`: {err}",
                hint="give versions like `--virtual __glibc=2.28` or `__osx=13.0`",
            ) from err


def _check_locked_targets(spec: Spec, platforms: list[str]) -> None:
    """A lock answers only for the platforms it pins."""
    have = [lp.platform for lp in spec.locked]
    for platform in platforms:
        if platform not in have:
            raise InvalidSpecError(
                f"platform `{platform}` is not in the lock",
                hint="the lock pins: " + ", ".join(f"`{p}`" for p in have),
            )


def check_locked_archives(spec: Spec, no_archives: bool) -> None:
    """An `@EXPLICIT` entry with only an md5 gets its sha256 from the archive envd fetches
    and checks: without archives there is no sha256 to describe it by."""
    if not no_archives:
        return
    for lp in spec.locked:
        for package in lp.packages:
            if not package.sha256:
                raise InvalidSpecError(
                    f"lock entry `{package.name}` ({lp.platform}) has an md5 but no sha256, "
                    "and `--no-archives` fetches nothing to take it from",
                    hint="drop `--no-archives` (the archives are fetched, checked against the "
                    "md5 and described by their sha256), or use a lock with sha256 hashes",
                )


def _strings(message: Message, prefix: str) -> Iterator[tuple[str, str]]:
    for field, value in message.ListFields():
        name = f"{prefix}{field.name}"
        items = value if field.is_repeated else [value]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                yield f"{name}[{key[:40]}]", key
                if isinstance(item, str):
                    yield f"{name}[{key[:40]}]", item
            continue
        for index, item in enumerate(items):
            where = f"{name}[{index}]" if field.is_repeated else name
            if isinstance(item, str):
                yield where, item
            elif isinstance(item, Message):
                yield from _strings(item, where + ".")
