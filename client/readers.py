"""Where the client reads environments: through the coordinator, or, for the embedded default,
straight from the home's store, so read-only commands and cache hits start no daemon."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .result import ResolveResult

if TYPE_CHECKING:
    from envd.alias_book import AliasBook
    from envd.aliases import Alias
    from envd.catalog import Catalog, EnvironmentSummary
    from envd.spec import Spec

    from .api import EnvdClient


class EnvironmentReader(Protocol):
    """Read-only access to the environments of one store."""

    @property
    def store_url(self) -> str:
        """The store read, as users would name it (shown when it holds nothing)."""

    def list_environments(self, req_id: str = "") -> list[EnvironmentSummary]:
        """Every stored environment (of one req_id), by req_id, platform, then oldest first."""

    def scan_environments(self, req_id: str = "") -> tuple[list[EnvironmentSummary], list[str]]:
        """`list_environments`, and a warning for each stored object skipped as unreadable."""

    def describe(self, summary: EnvironmentSummary) -> dict[str, Any]:
        """The description a listed environment names."""

    def get_alias(self, name: str) -> Alias:
        """The alias `name` (`namespace/name[:tag]`) as it stands."""

    def list_aliases(self, prefix: str = "") -> list[Alias]:
        """Aliases whose `namespace/name:tag` starts with `prefix` (without history)."""

    def describe_alias(self, alias: Alias, platform: str) -> tuple[dict[str, Any], bool]:
        """The exact description the alias names on `platform`, and whether it is the
        default of its req_id."""


class StoreReader:
    """The embedded default's store, read in-process: what the embedded coordinator would
    answer, without starting it (and without creating anything on disk)."""

    def __init__(self, store_url: str) -> None:
        from envd.catalog import Catalog
        from envd.store.url import open_store

        self._store = open_store(store_url)
        self.catalog: Catalog = Catalog(self._store)

    @property
    def store_url(self) -> str:
        return self._store.url

    def list_environments(self, req_id: str = "") -> list[EnvironmentSummary]:
        return self.catalog.list_environments(req_id or None)

    def scan_environments(self, req_id: str = "") -> tuple[list[EnvironmentSummary], list[str]]:
        listing = self.catalog.scan_environments(req_id or None)
        return list(listing.environments), [item.warning() for item in listing.unreadable]

    def describe(self, summary: EnvironmentSummary) -> dict[str, Any]:
        return self.catalog.read_description(summary.req_id, summary.platform, summary.full_id)

    @property
    def aliases(self) -> AliasBook:
        from envd.alias_book import AliasBook

        return AliasBook(self._store, self.catalog)

    def get_alias(self, name: str) -> Alias:
        from envd.aliases import parse_alias

        return self.aliases.get(parse_alias(name))

    def list_aliases(self, prefix: str = "") -> list[Alias]:
        import logging

        listing = self.aliases.list_aliases(prefix)
        for item in listing.unreadable:
            logging.getLogger("envd.aliases").warning(
                "skipped unreadable alias `%s`: %s", item.key, item.reason
            )
        return list(listing.aliases)

    def describe_alias(self, alias: Alias, platform: str) -> tuple[dict[str, Any], bool]:
        description = self.aliases.describe(alias, platform)
        default = self.catalog.get_default(description["req_id"], platform)
        return description, default is not None and default.full_id == description["full_id"]

    def cache_hits(
        self, spec: Spec, platforms: Sequence[str], *, no_archives: bool,
        memo_folder: Path | None = None,
    ) -> ResolveResult | None:  # fmt: skip
        """The result a coordinator would give if every platform is a cache hit, else None.

        The coordinator's test (`envd.cache_hits`), for conda, PyPI and mixed specs alike (a
        spec's local sources are named by hash: a hit needs none of them).
        """
        from envd.cache_hits import cache_hit
        from envd.ids import req_id as compute_req_id
        from envd.verified_memo import VerifiedMemo

        if memo_folder is not None:  # bytes verified by an earlier run skip the checks
            self.catalog.memo = VerifiedMemo(memo_folder)

        rid = compute_req_id(spec)
        result = ResolveResult(req_id=rid)
        for platform in dict.fromkeys(platforms):
            hit = cache_hit(self.catalog, rid, platform, no_archives=no_archives)
            if hit is None:
                return None
            result.events[platform] = hit
        return result


class CoordinatorReader:
    """A remote coordinator's store, read through its RPCs."""

    def __init__(self, client: EnvdClient, store_url: str) -> None:
        self.client = client
        self._store_url = store_url

    @property
    def store_url(self) -> str:
        return self._store_url

    def list_environments(self, req_id: str = "") -> list[EnvironmentSummary]:
        return self.client.list_environments(req_id=req_id)

    def get_alias(self, name: str) -> Alias:
        return self.client.get_alias(name)

    def list_aliases(self, prefix: str = "") -> list[Alias]:
        return self.client.list_aliases(prefix)

    def describe_alias(self, alias: Alias, platform: str) -> tuple[dict[str, Any], bool]:
        return self.client.get_environment(alias=str(alias.name), platform=platform)

    def scan_environments(self, req_id: str = "") -> tuple[list[EnvironmentSummary], list[str]]:
        return self.client.scan_environments(req_id=req_id)

    def describe(self, summary: EnvironmentSummary) -> dict[str, Any]:
        if summary.is_default:  # a direct read; by full_id the coordinator scans the store
            return self.client.get_environment(req_id=summary.req_id, platform=summary.platform)[0]
        found = self.client.get_environment(full_id=summary.full_id, platform=summary.platform)
        return found[0]
