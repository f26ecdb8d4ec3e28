"""`Catalog`: environments in a store — descriptions and default pointers, in write order.

A description is written create-only and only ever gains `formats[]` afterwards; the default
pointer of (req_id, platform) moves by compare-and-swap and only ever to a description already
in the store, so a reader that finds a pointer always finds its description (DESIGN.md §3,
write order). Every description read is verified against its own digest, and a default is
served only while the pointer's copy of that digest still matches (docs/architecture.md,
"Every stored byte is verified"); what fails is skipped and reported, never served.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from envd.default_pointer import DefaultPointer, decode_pointer, encode_pointer
from envd.description import DIGEST_FIELD, decode_description, encode_description, parse_timestamp
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
from envd.verified_memo import VerifiedMemo

log = logging.getLogger("envd.catalog")

# Each retry means another writer moved the pointer in between; a handful always settles.
MAX_SWAP_ATTEMPTS = 16
# What a read of one environment can find wrong with it; anything else (a store that is down)
# is not the environment's fault and is raised.
_UNREADABLE = (CorruptDescriptionError, EnvironmentNotFoundError)


@dataclass(frozen=True, slots=True)
class EnvironmentSummary:
    req_id: str
    platform: str
    full_id: str
    resolved_at: str
    is_default: bool


@dataclass(frozen=True, slots=True)
class UnreadableObject:
    """A stored object a listing skipped (a corrupt description or pointer), and why."""

    key: str
    reason: str

    def warning(self) -> str:
        """How a listing reports it (the coordinator's log, `envd-client list` on stderr)."""
        return f"skipped unreadable `{self.key}`: {self.reason}"


@dataclass(frozen=True, slots=True)
class EnvironmentListing:
    environments: tuple[EnvironmentSummary, ...]
    unreadable: tuple[UnreadableObject, ...]


class Catalog:
    """Reads and writes environments through any `Store`."""

    def __init__(self, store: Store, cache_size: int = 4096) -> None:
        self._store = store
        # Verified descriptions by key (each carries its digest). A default is served from here
        # when the pointer names the same digest: a cache hit then costs one pointer read and
        # no hashing. Callers must not mutate what they get.
        self._cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        # bytes verified before, in an earlier process (the client's cache-hit path only)
        self.memo: VerifiedMemo | None = None

    def write_description(self, doc: dict[str, Any]) -> bool:
        """Store a description (validated, sealed); True if this call wrote or replaced it.

        Everything a full_id hashes is immutable. Only `formats[]` may grow: an environment
        first resolved with `--no-archives` gains its cached archives when resolved again
        with them (compare-and-swap, so concurrent upgrades cannot lose each other). A stored
        copy that fails verification (truncated, altered, or written before digests) is
        replaced: it was never served, and this resolution is what it should have said.
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
            try:
                current = self._decode(
                    found[0], key, doc["req_id"], doc["platform"], doc["full_id"]
                )
            except CorruptDescriptionError as err:
                log.warning("replacing unreadable description `%s`: %s", key, err.message)
            else:
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

    def read_description(
        self, req_id: str, platform: str, full_id: str, *, digest: str | None = None
    ) -> dict[str, Any]:
        """The verified description; with `digest`, exactly that version of it or an error.

        Without `digest` a copy in memory is served only if it has its archives (such a
        description can at most gain another format of one); otherwise the store is read.
        """
        key = description_key(req_id, platform, full_id)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
        if cached is not None and (
            cached[DIGEST_FIELD] == digest if digest else has_archives(cached)
        ):
            return cached
        doc = self._load(key, req_id, platform, full_id)
        if digest is not None and doc[DIGEST_FIELD] != digest:
            raise CorruptDescriptionError(
                f"failed to verify description `{key}`: its digest is `{doc[DIGEST_FIELD]}`, "
                f"its default pointer says `{digest}`",
                hint="it changed after its default was set; resolve again to set the default anew",
            )
        return doc

    def stored_description(self, req_id: str, platform: str, full_id: str) -> dict[str, Any]:
        """The description as the store holds it now (read and verified, never from memory):
        what a pointer set now must carry the digest of."""
        return self._load(description_key(req_id, platform, full_id), req_id, platform, full_id)

    def find_by_full_id(self, full_id: str) -> list[dict[str, Any]]:
        """Every readable description with this full_id (one per req_id and platform that
        resolved to it); unreadable ones are skipped with a warning, or raised if none is left."""
        if not is_id(full_id):
            raise InvalidKeyError(f"failed to find full_id `{full_id}`: not 40 lowercase hex")
        # A scan of every description key: fine for now; an index by full_id can come later.
        found, errors = [], []
        for key in self._store.list(environments_prefix()):
            parts = parse_description_key(key)
            if parts is None or parts.full_id != full_id:
                continue
            try:
                found.append(self.read_description(parts.req_id, parts.platform, full_id))
            except _UNREADABLE as err:
                log.warning("skipped unreadable description `%s`: %s", key, err.message)
                errors.append(err)
        if errors and not found:
            raise errors[0]
        return found

    def get_default(self, req_id: str, platform: str) -> DefaultPointer | None:
        """The default pointer, or None without one; a garbage pointer counts as none (with
        a warning) until the next resolve of (req_id, platform) replaces it."""
        try:
            return self._read_pointer(req_id, platform)
        except CorruptObjectError as err:
            log.warning("%s; treated as no default", err.message)
            return None

    def set_default(
        self, req_id: str, platform: str, full_id: str, resolved_at: str
    ) -> DefaultPointer:
        """Point the default at `full_id` unless a newer one is there; return what holds.

        Refuses (`EnvironmentNotFoundError`) if the description is not stored yet. Ties on
        `resolved_at` go to this call, so a forced re-resolve within the same instant wins.
        The pointer takes the digest of the description as stored now (it follows a swap
        that added formats); a held pointer that is garbage, has no digest, or whose
        description is missing or no longer matches it is replaced whatever its time.
        """
        when = parse_timestamp(resolved_at)
        if when is None:
            raise InvalidKeyError(
                f"failed to set default of `{req_id}` on `{platform}`: `resolved_at` "
                f"`{resolved_at}` is not an RFC 3339 UTC time",
                hint="write times like `2024-05-01T12:00:00Z`",
            )
        key = default_key(req_id, platform)
        target = description_key(req_id, platform, full_id)
        for _ in range(MAX_SWAP_ATTEMPTS):
            current = self._store.get_versioned(key)
            # Read after the pointer, every attempt: a CAS that wins then names the digest
            # stored no earlier than the pointer it replaced (write order: description first).
            doc = self._load(target, req_id, platform, full_id)
            wanted = DefaultPointer(req_id, platform, full_id, resolved_at, doc[DIGEST_FIELD])
            version = None
            if current is not None:
                data, version = current
                held = decode_pointer(data, req_id, platform)
                if held is not None and self._keeps(held, wanted, when):
                    return held
            try:
                self._store.compare_and_swap(key, version, encode_pointer(wanted))
            except PreconditionFailed:
                continue
            return wanted
        raise StoreError(
            f"failed to set default of `{req_id}` on `{platform}`: the pointer changed on each "
            f"of {MAX_SWAP_ATTEMPTS} attempts",
            hint="many writers are racing on this environment; retry",
        )

    def delete_environment(self, req_id: str, platform: str, full_id: str) -> bool:
        """Remove the description, after the default pointer if that names it (write order
        reversed: a reader that finds a pointer still finds its description); True if the
        default was removed. Archives stay: garbage collection finds those no one needs."""
        key = description_key(req_id, platform, full_id)
        if self._store.stat(key) is None:
            raise EnvironmentNotFoundError(
                f"failed to delete environment `{full_id}` of `{req_id}` on `{platform}`: it "
                f"is not in store `{self._store.url}`",
                hint="`envd-client list` shows what the store holds",
            )
        pointer = self.get_default(req_id, platform)
        removed = pointer is not None and pointer.full_id == full_id
        if removed:
            self._store.delete(default_key(req_id, platform))
        self._store.delete(key)
        with self._cache_lock:
            self._cache.pop(key, None)
        return removed

    def default_description(self, req_id: str, platform: str) -> dict[str, Any] | None:
        """The verified description the default points at, or None: without a default, and
        (with a warning) when the pointer is garbage or has no digest, or its description is
        missing, corrupt or not the version the pointer names — so the request resolves anew
        and that resolution's default replaces the pointer."""
        pointer = self.get_default(req_id, platform)
        if pointer is None:
            return None
        if pointer.digest is None:
            log.warning(
                "default of `%s` on `%s` predates description digests and cannot be verified; "
                "treated as no default",
                req_id, platform,
            )  # fmt: skip
            return None
        try:
            return self.read_description(req_id, platform, pointer.full_id, digest=pointer.digest)
        except _UNREADABLE as err:
            log.warning(
                "default of `%s` on `%s` points at `%s`: %s; treated as no default",
                req_id, platform, pointer.full_id, err.message,
            )  # fmt: skip
            return None

    def list_environments(self, req_id: str | None = None) -> list[EnvironmentSummary]:
        """Every readable environment (of one req_id), by req_id, platform, then oldest first;
        what cannot be read is skipped with a warning (`scan_environments` returns it)."""
        listing = self.scan_environments(req_id)
        for item in listing.unreadable:
            log.warning("%s", item.warning())
        return list(listing.environments)

    def scan_environments(self, req_id: str | None = None) -> EnvironmentListing:
        """`list_environments`, with what it skipped: one corrupt object blocks nothing else."""
        pointers: dict[tuple[str, str], DefaultPointer | None] = {}
        unreadable: list[UnreadableObject] = []
        rows: list[tuple[datetime, EnvironmentSummary]] = []
        for key in self._store.list(environments_prefix(req_id)):
            parts = parse_description_key(key)
            if parts is None:
                continue  # not a description key: nothing envd wrote
            try:
                doc = self.read_description(parts.req_id, parts.platform, parts.full_id)
            except _UNREADABLE as err:
                unreadable.append(UnreadableObject(key, err.message))
                continue
            pair = (parts.req_id, parts.platform)
            if pair not in pointers:
                try:
                    pointers[pair] = self._read_pointer(*pair)
                except CorruptObjectError as err:
                    pointers[pair] = None
                    unreadable.append(UnreadableObject(default_key(*pair), err.message))
            pointer = pointers[pair]
            summary = EnvironmentSummary(
                req_id=parts.req_id,
                platform=parts.platform,
                full_id=parts.full_id,
                resolved_at=doc["resolved_at"],
                is_default=pointer is not None
                and (pointer.full_id, pointer.digest) == (parts.full_id, doc[DIGEST_FIELD]),
            )
            rows.append((_when(doc["resolved_at"]), summary))
        rows.sort(key=lambda row: (row[1].req_id, row[1].platform, row[0], row[1].full_id))
        return EnvironmentListing(tuple(s for _, s in rows), tuple(unreadable))

    def _load(self, key: str, req_id: str, platform: str, full_id: str) -> dict[str, Any]:
        """Read, verify and remember the stored description: the only way one enters memory."""
        data = self._store.get(key)
        if data is None:
            raise EnvironmentNotFoundError(
                f"failed to find environment `{full_id}` of `{req_id}` on `{platform}` "
                f"in store `{self._store.url}`",
                hint="resolve the spec for this platform first",
            )
        doc = self._decode(data, key, req_id, platform, full_id)
        with self._cache_lock:
            self._cache[key] = doc
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return doc

    def _decode(
        self, data: bytes, key: str, req_id: str, platform: str, full_id: str
    ) -> dict[str, Any]:
        memo, seen = self.memo, ""
        if memo is not None and memo.knows(seen := memo.key(data)):
            doc: dict[str, Any] = json.loads(data)  # these exact bytes passed every check
        else:
            doc = decode_description(data, key)
            if memo is not None:
                memo.remember(seen)
        if (doc["req_id"], doc["platform"], doc["full_id"]) != (req_id, platform, full_id):
            raise CorruptDescriptionError(
                f"failed to read description `{key}`: it describes `{doc['full_id']}` of "
                f"`{doc['req_id']}` on `{doc['platform']}`",
                hint="a description was copied under the wrong key; delete it and resolve again",
            )
        return doc

    def _read_pointer(self, req_id: str, platform: str) -> DefaultPointer | None:
        key = default_key(req_id, platform)
        data = self._store.get(key)
        if data is None:
            return None
        pointer = decode_pointer(data, req_id, platform)
        if pointer is None:
            raise CorruptObjectError(
                f"failed to read default pointer `{key}` in store `{self._store.url}`: "
                f"not a valid `{DEFAULT_FORMAT}` document",
                hint="resolve again to rewrite it",
            )
        return pointer

    def _keeps(self, held: DefaultPointer, wanted: DefaultPointer, when: datetime) -> bool:
        """Whether the held pointer stays: it is what we want, or newer and still verified."""
        if held == wanted:
            return True
        if held.full_id == wanted.full_id or held.digest is None:
            return False  # one description, one current digest: the pointer follows it
        if _when(held.resolved_at) <= when:
            return False
        try:
            self.read_description(held.req_id, held.platform, held.full_id, digest=held.digest)
        except _UNREADABLE as err:
            log.warning("replacing default that points at `%s`: %s", held.full_id, err.message)
            return False
        return True


def _when(resolved_at: str) -> datetime:
    moment = parse_timestamp(resolved_at)
    if moment is None:  # validated on read; kept total for the type checker
        raise CorruptObjectError(f"failed to parse time `{resolved_at}`")
    return moment


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
