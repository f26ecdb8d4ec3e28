"""The `Store` port every backend implements, and the key rules they all share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from envd.errors import InvalidKeyError

# Cloud object stores cap keys at 1024 bytes; a segment stays well under a file system's 255
# bytes so the local backend can add its temp-file and lock-file affixes beside it.
MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 200
_KEY_HINT = (
    "keys are `/`-separated relative paths; segments are non-empty, never start with `.`, "
    "and hold no `\\` or control characters"
)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a store knows about one object without reading it for the caller."""

    key: str
    size: int
    # Opaque to callers: an etag, a generation or a content hash. Only ever compared for
    # equality and handed back to `compare_and_swap`.
    version: str
    # When the object was written (POSIX seconds, the store's clock), if the backend says:
    # garbage collection keeps whatever is younger than its grace period.
    modified: float | None = None


class Store(Protocol):
    """A flat namespace of immutable-or-CAS objects (DESIGN.md §6).

    Keys are `/`-separated paths relative to the store root; every backend refuses the same
    keys (see `check_key`). Writes are all-or-nothing: no reader ever sees part of an object.
    """

    @property
    def url(self) -> str:
        """The URL that `open_store` turns back into this store."""
        ...

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create `key`; True if this call created it, False if it existed (never overwrites)."""
        ...

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None if absent."""
        ...

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and the version to pass to a later `compare_and_swap`."""
        ...

    def stat(self, key: str) -> ObjectInfo | None:
        """Size and version of the object, or None if absent."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Every key starting with `prefix` (a plain string prefix), sorted."""
        ...

    def compare_and_swap(self, key: str, expected_version: str | None, data: bytes) -> str:
        """Write `data` if the current version is `expected_version` (None: must be absent).

        Returns the new version; raises `PreconditionFailed` if the object changed.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the object; an absent key is not an error."""
        ...

    def put_file_if_absent(self, key: str, path: Path) -> bool:
        """Create `key` from a local file, streamed (in parts when large), never holding it
        whole in memory; same create-only semantics as `put_if_absent`. An upload that fails
        part-way leaves no visible object."""
        ...

    def download(self, key: str, dest: Path) -> bool:
        """Stream the object into `dest` (written beside it, then renamed: a failed download
        leaves no file); False if the object is absent."""
        ...


@runtime_checkable
class Leftovers(Protocol):
    """A backend whose interrupted writes can leave something behind that is not a key (the
    local store's temp files when a writer is killed); garbage collection removes it."""

    def leftovers(self, older_than: float) -> list[ObjectInfo]:
        """What interrupted writes left, last written before `older_than` (POSIX seconds);
        each `key` is a path under the store root, never a key."""
        ...

    def remove_leftover(self, name: str) -> None:
        """Remove one thing `leftovers` named (refusing anything else)."""
        ...


def check_key(key: str) -> str:
    """Return `key` if every backend can hold it safely, else raise `InvalidKeyError`."""
    if not isinstance(key, str) or not key:
        raise InvalidKeyError(f"failed to use store key `{key!r}`: a key is a non-empty string")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise _invalid(key, f"longer than {MAX_KEY_BYTES} bytes")
    if key.startswith("/"):
        raise _invalid(key, "absolute keys escape the store root")
    for segment in key.split("/"):
        _check_segment(key, segment)
    return key


def check_prefix(prefix: str) -> str:
    """Return `prefix` if it is empty or a key prefix (`envs/`, `envs/ab`), else raise."""
    if prefix == "":
        return prefix
    if not isinstance(prefix, str) or prefix.startswith("/"):
        raise _invalid(prefix, "a prefix is a relative key prefix or empty")
    *complete, partial = prefix.split("/")
    for segment in complete:
        _check_segment(prefix, segment)
    if partial:
        _check_segment(prefix, partial)
    return prefix


def _check_segment(key: str, segment: str) -> None:
    if segment == "":
        raise _invalid(key, "empty segment")
    if segment.startswith("."):
        # Covers `.` and `..`, and keeps the local backend's temp and lock files unaddressable.
        raise _invalid(key, f"segment `{segment}` starts with `.`")
    if "\\" in segment or any(ord(ch) < 32 or ord(ch) == 127 for ch in segment):
        raise _invalid(key, f"segment `{segment!r}` holds `\\` or a control character")
    if len(segment.encode()) > MAX_SEGMENT_BYTES:
        raise _invalid(key, f"segment longer than {MAX_SEGMENT_BYTES} bytes")


def _invalid(key: str, why: str) -> InvalidKeyError:
    return InvalidKeyError(f"failed to use store key `{key}`: {why}", hint=_KEY_HINT)
