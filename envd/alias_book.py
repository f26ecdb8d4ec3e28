"""`AliasBook`: aliases in a store — each move one compare-and-swap, reads verified by digest.

A writer reads the record, decides, and swaps from the version it read: of two writers racing
on one alias exactly one wins and the other gets `AliasConflictError` naming what the alias
points at now, so no move is ever lost and the history holds every move that happened. Only
the forced deletion of an environment retries (it removes what it names, whatever moved).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from envd.aliases import (
    Action,
    Alias,
    AliasMove,
    AliasName,
    AliasTarget,
    decode_alias,
    encode_alias,
)
from envd.catalog import MAX_SWAP_ATTEMPTS, Catalog, UnreadableObject
from envd.description import DIGEST_FIELD
from envd.errors import (
    AliasConflictError,
    AliasNotFoundError,
    CorruptObjectError,
    EnvironmentNotFoundError,
    InvalidAliasError,
    PreconditionFailed,
    StoreError,
)
from envd.store.base import Store
from envd.store.layout import aliases_prefix, parse_alias_key

log = logging.getLogger("envd.aliases")
_NAMESPACE_START = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True, slots=True)
class AliasListing:
    aliases: tuple[Alias, ...]
    unreadable: tuple[UnreadableObject, ...]


class AliasBook:
    """Reads and moves the aliases of one store; environments are read through `catalog`."""

    def __init__(self, store: Store, catalog: Catalog) -> None:
        self._store = store
        self._catalog = catalog

    def get(self, name: AliasName) -> Alias:
        """The alias as it stands; AliasNotFoundError if it was never set or was deleted."""
        record, _ = self._read(name)
        if record is None or not record.live:
            raise _not_found(name, record)
        return record

    def describe(self, alias: Alias, platform: str) -> dict[str, Any]:
        """The description the alias names on `platform`: exactly the version it was set to
        (its digest), or an error naming both digests."""
        if platform not in alias.environments or alias.req_id is None:
            raise EnvironmentNotFoundError(
                f"alias `{alias.name}` has no environment on `{platform}`",
                hint="it points at: "
                + (", ".join(f"`{p}`" for p in sorted(alias.environments)) or "nothing"),
            )
        full_id, digest = alias.environments[platform]
        doc = self._catalog.read_description(alias.req_id, platform, full_id)
        if doc[DIGEST_FIELD] != digest:  # a copy in memory may be older than the store's
            doc = self._catalog.stored_description(alias.req_id, platform, full_id)
        if doc[DIGEST_FIELD] != digest:
            raise CorruptObjectError(
                f"failed to verify environment `{full_id}` on `{platform}` of alias "
                f"`{alias.name}`: its description's digest is `{doc[DIGEST_FIELD]}`, the alias "
                f"says `{digest}`",
                hint="the description changed after the alias was set (it may have gained "
                f"archives); point the alias again with `envd-client alias set {alias.name} "
                f"{alias.req_id}:{full_id}`",
            )
        return doc

    def set(self, name: AliasName, target: AliasTarget, *, who: str, when: str) -> Alias:
        """Point `name` at `target` and return the record. With the alias's req_id unchanged,
        the platforms given move and the others stay; another req_id replaces them all. A
        write-once tag only ever gains platforms of its req_id."""
        if not target.full_ids:
            raise InvalidAliasError(
                f"failed to point alias `{name}`: no environment given",
                hint="name an environment that is resolved for at least one platform",
            )
        sealed = {
            platform: (full_id, self._catalog.stored_description(
                target.req_id, platform, full_id)[DIGEST_FIELD])
            for platform, full_id in target.full_ids.items()
        }  # fmt: skip
        current, version = self._read(name)
        environments = _merged(name, current, target, sealed)
        if current is not None and current.live and current.req_id == target.req_id:
            if current.environments == environments:
                return current  # already so: setting it again changes nothing
        before = current.target if current is not None else None
        after = AliasTarget(target.req_id, {p: e[0] for p, e in environments.items()})
        history = current.history if current is not None else ()
        if before != after:  # a new digest of the same environments is not a move
            history = (*history, AliasMove(when, who, Action.SET, before, after))
        record = Alias(name, target.req_id, environments, history)
        return self._swap(name, version, record, f"point alias `{name}` at {after.describe()}")

    def delete(self, name: AliasName, *, who: str, when: str) -> Alias:
        """Remove the alias; its record stays, deleted, so its history is kept (and a
        version tag is never reused)."""
        current, version = self._read(name)
        if current is None or not current.live:
            raise _not_found(name, current)
        move = AliasMove(when, who, Action.DELETE, current.target, None)
        record = Alias(name, None, {}, (*current.history, move))
        return self._swap(name, version, record, f"delete alias `{name}`")

    def drop_environment(
        self, name: AliasName, platform: str, full_id: str, *, who: str, when: str
    ) -> Alias | None:
        """An environment the alias names on `platform` is being deleted: the alias stops
        naming it (deleted when nothing is left), recorded in its history. None if it did
        not name it (any more)."""
        for _ in range(MAX_SWAP_ATTEMPTS):
            current, version = self._read(name)
            if current is None or current.environments.get(platform, ("",))[0] != full_id:
                return None
            environments = {p: e for p, e in current.environments.items() if p != platform}
            req_id = current.req_id if environments else None
            after = None if req_id is None else AliasTarget(
                req_id, {p: e[0] for p, e in environments.items()})  # fmt: skip
            move = AliasMove(when, who, Action.ENVIRONMENT_DELETED, current.target, after)
            record = Alias(name, req_id, environments, (*current.history, move))
            try:
                self._store.compare_and_swap(name.key, version, encode_alias(record))
            except PreconditionFailed:
                continue
            return record
        raise StoreError(
            f"failed to update alias `{name}`: it changed on each of {MAX_SWAP_ATTEMPTS} attempts",
            hint="many writers are racing on this alias; retry",
        )

    def list_aliases(self, prefix: str = "") -> AliasListing:
        """The aliases (not deleted ones) whose `namespace/name:tag` starts with `prefix`,
        sorted; records that can't be read are skipped and returned."""
        found: list[Alias] = []
        unreadable: list[UnreadableObject] = []
        for key in self._store.list(_store_prefix(prefix)):
            parts = parse_alias_key(key)
            if parts is None:
                continue  # not an alias key: nothing envd wrote
            name = AliasName(*parts)
            if not str(name).startswith(prefix):
                continue
            try:
                record, _ = self._read(name)
            except CorruptObjectError as err:
                unreadable.append(UnreadableObject(key, err.message))
                continue
            if record is not None and record.live:
                found.append(record)
        found.sort(key=lambda a: str(a.name))
        return AliasListing(tuple(found), tuple(unreadable))

    def pointing_at(self, req_id: str, platform: str, full_id: str) -> list[Alias]:
        """Every alias naming this environment (a scan of every alias: deletions are rare)."""
        listing = self.list_aliases()
        for item in listing.unreadable:
            log.warning("skipped unreadable alias `%s`: %s", item.key, item.reason)
        return [
            a
            for a in listing.aliases
            if a.req_id == req_id and a.environments.get(platform, ("",))[0] == full_id
        ]

    def _read(self, name: AliasName) -> tuple[Alias | None, str | None]:
        found = self._store.get_versioned(name.key)
        if found is None:
            return None, None
        return decode_alias(found[0], name, self._store.url), found[1]

    def _swap(self, name: AliasName, version: str | None, record: Alias, doing: str) -> Alias:
        try:
            self._store.compare_and_swap(name.key, version, encode_alias(record))
        except PreconditionFailed as err:
            now, _ = self._read(name)
            if now is not None and (now.req_id, now.environments) == (
                record.req_id,
                record.environments,
            ):
                return now  # another writer did exactly this
            holds = "is deleted" if now is None or now.target is None else (
                f"now points at {now.target.describe()}")  # fmt: skip
            raise AliasConflictError(
                f"failed to {doing}: another writer moved it first; it {holds}",
                hint=f"see `envd-client alias get {name}`, then set it again if still wanted",
            ) from err
        return record


def _merged(
    name: AliasName,
    current: Alias | None,
    target: AliasTarget,
    sealed: dict[str, tuple[str, str]],
) -> dict[str, tuple[str, str]]:
    """The environments the alias will name, or AliasConflictError for a write-once tag."""
    if current is None or (current.target is None and not name.write_once):
        return sealed
    held = current.target
    if held is None:
        raise AliasConflictError(
            f"failed to point alias `{name}` at {target.describe()}: its tag `{name.tag}` looks "
            "like a version, so it is write-once, and it was set before and then deleted",
            hint="a version tag is never reused: pick a new one",
        )
    same_req = current.req_id == target.req_id
    if not name.write_once:
        return {**current.environments, **sealed} if same_req else sealed
    moved = [p for p, (f, _) in sealed.items() if held.full_ids.get(p, f) != f]
    if not same_req or moved:
        raise AliasConflictError(
            f"failed to point alias `{name}` at {target.describe()}: its tag `{name.tag}` looks "
            f"like a version, so it is write-once, and it points at {held.describe()}",
            hint="use a new version tag, or a moving tag such as `latest`",
        )
    return {**current.environments, **sealed}


def _store_prefix(prefix: str) -> str:
    """The store prefix holding every alias whose name starts with `prefix`."""
    namespace, slash, _ = prefix.partition("/")
    namespace = namespace.partition(":")[0]
    if not namespace or not _NAMESPACE_START.match(namespace):
        return aliases_prefix()
    return aliases_prefix(namespace) if slash else aliases_prefix() + namespace


def _not_found(name: AliasName, record: Alias | None) -> AliasNotFoundError:
    if record is not None and record.history:
        last = record.history[-1]
        what = (
            "its last environment was deleted"
            if last.action == Action.ENVIRONMENT_DELETED
            else "deleted"
        )
        hint = (
            "a version tag is never reused: pick a new one"
            if name.write_once
            else f"point it again with `envd-client alias set {name} ID`"
        )
        return AliasNotFoundError(
            f"no alias `{name}`: {what} on {last.when} by `{last.who}`", hint=hint
        )
    return AliasNotFoundError(
        f"no alias `{name}`", hint="`envd-client alias list` shows the aliases in the store"
    )
