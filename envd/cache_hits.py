"""The cache-hit test, in one place: a (req_id, platform) is answered from the store when its
default exists and, unless the request wants no archives, that environment has them."""

from __future__ import annotations

from envd.catalog import Catalog, has_archives
from envd.progress import Outcome, ResolveEvent, Stage


def cache_hit(
    catalog: Catalog, req_id: str, platform: str, *, no_archives: bool
) -> ResolveEvent | None:
    """The `done`/`cache_hit` event for this platform, or None when it must be resolved (no
    default yet, or a default without the archives the request wants)."""
    description = catalog.default_description(req_id, platform)
    if description is None or not (no_archives or has_archives(description)):
        return None
    return ResolveEvent(
        req_id=req_id,
        platform=platform,
        stage=Stage.DONE,
        outcome=Outcome.CACHE_HIT,
        full_id=description["full_id"],
        description=description,
    )
