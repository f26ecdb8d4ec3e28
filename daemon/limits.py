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
AGENT_MESSAGE_LIMIT = 4 * 1024 * 1024
assert MAX_CANONICAL_SPEC_BYTES * 2 < AGENT_MESSAGE_LIMIT


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
    if len(canonical) > MAX_CANONICAL_SPEC_BYTES:
        raise RequestTooLargeError(
            f"the normalized spec is {len(canonical)} bytes; the limit is "
            f"{MAX_CANONICAL_SPEC_BYTES}",
            hint="split the request into smaller environments",
        )
    for platform in platforms:
        values = effective_virtual_packages(platform, dict(spec.virtual_packages))
        try:
            rattler_virtual_packages(values)
        except Exception as err:  # py-rattler's parse errors: each a different class
            raise InvalidSpecError(
                f"invalid virtual package value for `{platform}`: {err}",
                hint="give versions like `--virtual __glibc=2.28` or `__osx=13.0`",
            ) from err


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
