"""Deleting an environment: out of the aliases that name it (only when forced, recorded in
their history), then its default pointer and its description. Archives stay for `gc`."""

from __future__ import annotations

from dataclasses import dataclass

from envd.alias_book import AliasBook
from envd.catalog import Catalog
from envd.errors import EnvironmentInUseError


@dataclass(frozen=True, slots=True)
class Deletion:
    req_id: str
    platform: str
    full_id: str
    default_removed: bool
    aliases_updated: tuple[str, ...]


def delete_environment(
    catalog: Catalog, aliases: AliasBook, req_id: str, platform: str, full_id: str, *,
    force: bool, who: str, when: str,
) -> Deletion:  # fmt: skip
    """Delete one environment; refused while an alias points at it unless `force`."""
    naming = aliases.pointing_at(req_id, platform, full_id)
    if naming and not force:
        names = ", ".join(f"`{a.name}`" for a in naming)
        raise EnvironmentInUseError(
            f"failed to delete `{req_id}:{full_id}` on `{platform}`: alias(es) {names} point at it",
            hint="point them elsewhere first, or pass `--force` to delete it and take it out "
            "of them (recorded in their history)",
        )
    updated = tuple(
        str(alias.name)
        for alias in naming
        if aliases.drop_environment(alias.name, platform, full_id, who=who, when=when)
    )
    removed = catalog.delete_environment(req_id, platform, full_id)
    return Deletion(req_id, platform, full_id, removed, updated)
