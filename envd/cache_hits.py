"""The cache-hit test, in one place: a (req_id, platform) is answered from the store when its
default exists (or, under `--use-latest mine|USERS`, an environment those users resolved) and,
unless the request wants no archives, that environment has them."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from envd.catalog import Catalog, has_archives
from envd.errors import CorruptDescriptionError, EnvironmentNotFoundError
from envd.progress import Outcome, ResolveEvent, Stage


def cache_hit(
    catalog: Catalog, req_id: str, platform: str, *, no_archives: bool
) -> ResolveEvent | None:
    """The `done`/`cache_hit` event for this platform, or None when it must be resolved (no
    default yet, or a default without the archives the request wants)."""
    description = catalog.default_description(req_id, platform)
    if description is None or not (no_archives or has_archives(description)):
        return None
    return _hit(req_id, platform, description)


def latest_hit(
    catalog: Catalog, req_id: str, platform: str, *, no_archives: bool, users: Collection[str]
) -> ResolveEvent | None:
    """The event for the newest environment of (req_id, platform) that one of `users`
    resolved (`resolved_by.user`), or None. Reads every description of the req_id: a listing,
    not a pointer, so only requests that ask for it pay for it."""
    rows = [s for s in catalog.list_environments(req_id) if s.platform == platform]
    for summary in reversed(rows):  # oldest first: newest last
        try:
            description = catalog.read_description(req_id, platform, summary.full_id)
        except (CorruptDescriptionError, EnvironmentNotFoundError):
            continue  # deleted or spoiled since it was listed: never served
        if description["resolved_by"]["user"] not in users:
            continue
        if no_archives or has_archives(description):
            return _hit(req_id, platform, description)
    return None


def _hit(req_id: str, platform: str, description: dict[str, Any]) -> ResolveEvent:
    return ResolveEvent(
        req_id=req_id,
        platform=platform,
        stage=Stage.DONE,
        outcome=Outcome.CACHE_HIT,
        full_id=description["full_id"],
        description=description,
    )
