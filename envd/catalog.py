"""`Catalog`: environments in a store — descriptions and default pointers, in write order.

A description is written create-only and never changes; the default pointer of (req_id,
platform) moves by compare-and-swap and only ever to a description already in the store, so a
reader that finds a pointer always finds its description (DESIGN.md §3, write order).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from envd.description import decode_description, encode_description, parse_timestamp
from envd.errors import (
    CorruptDescriptionError,
    CorruptObjectError,
    EnvironmentNotFoundError,
    InvalidKeyError,
    PreconditionFailed,
    StoreError,
)
from envd.ids import is_id
from envd.store.base import Store
from envd.store.layout import (
    DEFAULT_FORMAT,
    default_key,
    description_key,
    environments_prefix,
    parse_description_key,
)

# Each retry means another writer moved the pointer in between; a handful always settles.
MAX_SWAP_ATTEMPTS = 16


@dataclass(frozen=True, slots=True)
class DefaultPointer:
    req_id: str
    platform: str
    full_id: str
    resolved_at: str


@dataclass(frozen=True, slots=True)
class EnvironmentSummary:
    req_id: str
    platform: str
    full_id: str
    resolved_at: str
    is_default: bool


class Catalog:
    """Reads and writes environments through any `Store`."""

    def __init__(self, store: Store, cache_size: int = 4096) -> None:
        self._store = store
        # Descriptions are immutable once written, so a validated one can be served from
        # memory: a cache hit then costs one pointer read (callers must not mutate it).
        self._cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    def write_description(self, doc: dict[str, Any]) -> bool:
        """Store a description (validated); True if this call wrote or upgraded it.

        Everything a full_id hashes is immutable. Only `formats[]` may grow: an environment
        first resolved with `--no-archives` gains its cached archives when resolved again
        with them (compare-and-swap, so concurrent upgrades cannot lose each other).
        """
        data = encode_description(doc)
        key = description_key(doc["req_id"], doc["platform"], doc["full_id"])
        if self._store.put_if_absent(key, data):
            return True
        for _ in range(MAX_SWAP_ATTEMPTS):
            found = self._store.get_versioned(key)
            if found is None:
                if self._store.put_if_absent(key, data):
                    return True
                continue
            current = decode_description(found[0], key)
            if not _adds_formats(current, doc):
                return False
            try:
                self._store.compare_and_swap(key, found[1], data)
            except PreconditionFailed:
                continue
            with self._cache_lock:
                self._cache.pop(key, None)
            return True
        raise StoreError(
            f"failed to upgrade description `{key}` after {MAX_SWAP_ATTEMPTS} attempts",
            hint="many writers are racing on this environment; retry",
        )

    def read_description(self, req_id: str, platform: str, full_id: str) -> dict[str, Any]:
        key = description_key(req_id, platform, full_id)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        doc = self._read_description(key, req_id, platform, full_id)
        if not has_archives(doc):
            return doc  # may still gain formats (see write_description): never cached
        with self._cache_lock:
            self._cache[key] = doc
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return doc

    def _read_description(
        self, key: str, req_id: str, platform: str, full_id: str
    ) -> dict[str, Any]:
        data = self._store.get(key)
        if data is None:
            raise EnvironmentNotFoundError(
                f"failed to find environment `{full_id}` of `{req_id}` on `{platform}` "
                f"in store `{self._store.url}`",
                hint="resolve the spec for this platform first",
            )
        doc = decode_description(data, key)
        if (doc["req_id"], doc["platform"], doc["full_id"]) != (req_id, platform, full_id):
            raise CorruptDescriptionError(
                f"failed to read description `{key}`: it describes `{doc['full_id']}` of "
                f"`{doc['req_id']}` on `{doc['platform']}`",
                hint="a description was copied under the wrong key; delete it and resolve again",
            )
        return doc

    def find_by_full_id(self, full_id: str) -> list[dict[str, Any]]:
        """Every description with this full_id (one per req_id and platform that resolved to it)."""
        if not is_id(full_id):
            raise InvalidKeyError(f"failed to find full_id `{full_id}`: not 40 lowercase hex")
        # A scan of every description key: fine for now; an index by full_id can come later.
        found = []
        for key in self._store.list(environments_prefix()):
            parts = parse_description_key(key)
            if parts is not None and parts.full_id == full_id:
                found.append(self.read_description(parts.req_id, parts.platform, full_id))
        return found

    def get_default(self, req_id: str, platform: str) -> DefaultPointer | None:
        key = default_key(req_id, platform)
        data = self._store.get(key)
        return None if data is None else self._decode_pointer(key, data, req_id, platform)

    def set_default(
        self, req_id: str, platform: str, full_id: str, resolved_at: str
    ) -> DefaultPointer:
        """Point the default at `full_id` unless a newer one is there; return what holds.

        Refuses (`EnvironmentNotFoundError`) if the description is not stored yet. Ties on
        `resolved_at` go to this call, so a forced re-resolve within the same instant wins.
        """
        when = parse_timestamp(resolved_at)
        if when is None:
            raise InvalidKeyError(
                f"failed to set default of `{req_id}` on `{platform}`: `resolved_at` "
                f"`{resolved_at}` is not an RFC 3339 UTC time",
                hint="write times like `2024-05-01T12:00:00Z`",
            )
        self.read_description(req_id, platform, full_id)  # write order: description first
        wanted = DefaultPointer(req_id, platform, full_id, resolved_at)
        key = default_key(req_id, platform)
        for _ in range(MAX_SWAP_ATTEMPTS):
            current = self._store.get_versioned(key)
            version = None
            if current is not None:
                data, version = current
                held = self._decode_pointer(key, data, req_id, platform, repairing=True)
                if held is not None and _keeps(held, wanted, when):
                    return held
            try:
                self._store.compare_and_swap(key, version, _encode_pointer(wanted))
            except PreconditionFailed:
                continue
            return wanted
        raise StoreError(
            f"failed to set default of `{req_id}` on `{platform}`: the pointer changed on each "
            f"of {MAX_SWAP_ATTEMPTS} attempts",
            hint="many writers are racing on this environment; retry",
        )

    def default_description(self, req_id: str, platform: str) -> dict[str, Any] | None:
        """The description the default points at (validated), or None without a default."""
        pointer = self.get_default(req_id, platform)
        if pointer is None:
            return None
        try:
            return self.read_description(req_id, platform, pointer.full_id)
        except EnvironmentNotFoundError as err:
            raise CorruptObjectError(
                f"failed to read default of `{req_id}` on `{platform}`: it points at "
                f"`{pointer.full_id}`, whose description is missing",
                hint="resolve again with `--force` to write a fresh description and default",
            ) from err

    def list_environments(self, req_id: str | None = None) -> list[EnvironmentSummary]:
        """Every stored environment (of one req_id), by req_id, platform, then oldest first."""
        defaults: dict[tuple[str, str], DefaultPointer | None] = {}
        rows: list[tuple[datetime, EnvironmentSummary]] = []
        for key in self._store.list(environments_prefix(req_id)):
            parts = parse_description_key(key)
            if parts is None:
                continue  # not a description key: nothing envd wrote
            doc = self.read_description(parts.req_id, parts.platform, parts.full_id)
            pair = (parts.req_id, parts.platform)
            if pair not in defaults:
                defaults[pair] = self.get_default(*pair)
            pointer = defaults[pair]
            summary = EnvironmentSummary(
                req_id=parts.req_id,
                platform=parts.platform,
                full_id=parts.full_id,
                resolved_at=doc["resolved_at"],
                is_default=pointer is not None and pointer.full_id == parts.full_id,
            )
            rows.append((_when(doc["resolved_at"]), summary))
        rows.sort(key=lambda row: (row[1].req_id, row[1].platform, row[0], row[1].full_id))
        return [summary for _, summary in rows]

    def _decode_pointer(
        self, key: str, data: bytes, req_id: str, platform: str, *, repairing: bool = False
    ) -> DefaultPointer | None:
        """The pointer stored at `key`; a corrupt one raises, or is None while repairing it."""
        try:
            doc = json.loads(data)
            pointer = DefaultPointer(
                req_id=doc["req_id"],
                platform=doc["platform"],
                full_id=doc["full_id"],
                resolved_at=doc["resolved_at"],
            )
            valid = (
                doc["schema"] == DEFAULT_FORMAT
                and (pointer.req_id, pointer.platform) == (req_id, platform)
                and is_id(pointer.full_id)
                and parse_timestamp(pointer.resolved_at) is not None
            )
        except (ValueError, TypeError, KeyError):
            valid = False
        if valid:
            return pointer
        if repairing:
            return None  # a pointer is derived data: overwrite it with a good one
        raise CorruptObjectError(
            f"failed to read default pointer `{key}` in store `{self._store.url}`: "
            f"not a valid `{DEFAULT_FORMAT}` document",
            hint="resolve again with `--force` to rewrite it",
        )


def _keeps(held: DefaultPointer, wanted: DefaultPointer, when: datetime) -> bool:
    """Whether the held pointer stays: it is newer, or already what we want."""
    return held == wanted or _when(held.resolved_at) > when


def _when(resolved_at: str) -> datetime:
    moment = parse_timestamp(resolved_at)
    if moment is None:  # validated on read; kept total for the type checker
        raise CorruptObjectError(f"failed to parse time `{resolved_at}`")
    return moment


def _encode_pointer(pointer: DefaultPointer) -> bytes:
    doc = {
        "schema": DEFAULT_FORMAT,
        "req_id": pointer.req_id,
        "platform": pointer.platform,
        "full_id": pointer.full_id,
        "resolved_at": pointer.resolved_at,
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def has_archives(doc: dict[str, Any]) -> bool:
    """Whether every package of a description has at least one archive cached in the store."""
    return all(p.get("formats") for p in doc["packages"])


def _adds_formats(current: dict[str, Any], new: dict[str, Any]) -> bool:
    """True when `new` caches formats `current` lacks (and loses none it has)."""
    have = {(p["kind"], p["name"]): {f["format"] for f in p.get("formats", [])}
            for p in current["packages"]}  # fmt: skip
    gained = False
    for p in new["packages"]:
        formats = {f["format"] for f in p.get("formats", [])}
        old = have.get((p["kind"], p["name"]), set())
        if not old <= formats:
            return False
        gained = gained or formats > old
    return gained
