"""Removing what no environment needs: archives no description references (the loser of a
transmute race leaves such a `.conda`), links whose `.conda` is gone, and what interrupted
writes left in the store — never anything younger than the grace period.

Which archives are referenced is read from every description, verified or not (a description
that fails its digest still keeps its archives: being wrong about garbage must only ever keep
too much). Descriptions written while the collection runs are read again just before removing,
so a resolve that reused an old unreferenced archive and finished meanwhile keeps it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from envd.errors import InvalidKeyError, InvalidSpecError
from envd.spec import parse_source_url
from envd.store.base import Leftovers, ObjectInfo, Store
from envd.store.layout import LINKS, PKGS, environments_prefix, package_key

log = logging.getLogger("envd.garbage")


@dataclass(frozen=True, slots=True)
class GarbageReport:
    removed: tuple[str, ...]  # store keys (or temp-file paths) removed, or with dry_run to be
    removed_bytes: int
    kept_young: int  # unreferenced, but younger than the grace period
    unreadable: tuple[str, ...]  # descriptions that are not JSON: nothing known they need


def collect_garbage(store: Store, *, now: float, grace: float, dry_run: bool) -> GarbageReport:
    """Remove (or with `dry_run` only list) what nothing references and is older than `grace`
    seconds at `now` (POSIX seconds)."""
    descriptions = set(store.list(environments_prefix()))
    referenced, unreadable = _references(store, descriptions)
    unused = [k for k in store.list(f"{PKGS}/") if k not in referenced]
    doomed, kept_young = _by_age(store, unused, now, grace)
    links = _dead_links(store, referenced, {info.key for info in doomed})
    old_links, young_links = _by_age(store, links, now, grace)
    doomed += old_links
    kept_young += young_links
    # what interrupted writes left (the local store's temp files)
    leftovers = store.leftovers(now - grace) if isinstance(store, Leftovers) else []
    # descriptions finished meanwhile: a resolve may have reused one of the doomed archives
    fresh = set(store.list(environments_prefix())) - descriptions
    late, late_unreadable = _references(store, fresh)
    doomed = [info for info in doomed if info.key not in late]
    removed = [*doomed, *leftovers]
    if not dry_run:
        for info in doomed:
            store.delete(info.key)
        if isinstance(store, Leftovers):
            for info in leftovers:
                store.remove_leftover(info.key)
        if removed:
            log.info("garbage collection removed %d object(s)", len(removed))
    return GarbageReport(
        removed=tuple(info.key for info in removed),
        removed_bytes=sum(info.size for info in removed),
        kept_young=kept_young,
        unreadable=tuple(sorted(unreadable | late_unreadable)),
    )


def _references(store: Store, keys: Iterable[str]) -> tuple[set[str], set[str]]:
    """Archive keys the descriptions under `keys` name, and the descriptions not JSON."""
    referenced: set[str] = set()
    unreadable: set[str] = set()
    for key in keys:
        data = store.get(key)
        if data is None:
            continue  # deleted meanwhile
        try:
            doc = json.loads(data)
            packages = doc["packages"]
            for package in packages:
                referenced.update(_package_keys(package))
            referenced.update(_source_keys(doc.get("spec")))
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("description `%s` is not readable: the archives it needs are unknown", key)
            unreadable.add(key)
    return referenced, unreadable


def _package_keys(package: dict[str, Any]) -> list[str]:
    found = []
    pairs = [(package.get("sha256"), package.get("filename"))]
    pairs += [(f.get("sha256"), f.get("filename")) for f in package.get("formats") or []]
    for sha256, filename in pairs:
        try:
            found.append(package_key(str(sha256), str(filename)))
        except InvalidKeyError:
            continue  # not a key: it names nothing in the store
    return found


def _source_keys(spec: Any) -> list[str]:
    """Local sources the spec names (`envd-source://`): a re-resolve (`--force`) reads them."""
    deps = spec.get("pypi") if isinstance(spec, dict) else None
    found = []
    for dep in deps if isinstance(deps, list) else []:
        try:
            url = Requirement(str(dep["requirement"])).url
            source = parse_source_url(url) if url else None
        except (InvalidRequirement, InvalidSpecError, KeyError, TypeError):
            continue
        if source is not None:
            found.append(package_key(*source))
    return found


def _dead_links(store: Store, referenced: set[str], doomed: set[str]) -> list[str]:
    """Transmute links whose `.conda` is unreferenced and gone (or going now)."""
    dead = []
    for key in store.list(f"{LINKS}/"):
        target = _link_target(store.get(key))
        if target in referenced:
            continue
        if target is not None and target not in doomed and store.stat(target) is not None:
            continue  # a live `.conda` an agent may still reuse
        dead.append(key)
    return dead


def _by_age(
    store: Store, keys: Iterable[str], now: float, grace: float
) -> tuple[list[ObjectInfo], int]:
    """The objects older than the grace period, and how many others were kept as young (an
    object of unknown age counts as young: being wrong must only ever keep more)."""
    old: list[ObjectInfo] = []
    young = 0
    for key in keys:
        info = store.stat(key)
        if info is None:
            continue  # removed meanwhile
        if info.modified is None or now - info.modified < grace:
            young += 1
        else:
            old.append(info)
    return old, young


def _link_target(data: bytes | None) -> str | None:
    """The `pkgs/` key a link names, or None for a link that names nothing valid."""
    if data is None:
        return None
    try:
        doc = json.loads(data)
        return package_key(str(doc["sha256"]), str(doc["filename"]))
    except (ValueError, TypeError, KeyError, AttributeError, InvalidKeyError):
        return None
