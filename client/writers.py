"""Where the client changes a store: through the coordinator (which checks the token), or for
the embedded default, the home's store itself with the same domain code the coordinator runs."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from envd.aliases import Alias
    from envd.deletion import Deletion
    from envd.garbage import GarbageReport

    from .api import EnvdClient
    from .readers import StoreReader


class EnvironmentWriter(Protocol):
    """Alias moves, deletions and garbage collection in one store."""

    def set_alias(self, name: str, req_id: str, full_ids: dict[str, str]) -> Alias: ...

    def delete_alias(self, name: str) -> Alias: ...

    def delete_environment(
        self, req_id: str, platform: str, full_id: str, *, force: bool
    ) -> Deletion: ...

    def collect_garbage(self, *, dry_run: bool, grace: float) -> GarbageReport: ...


class CoordinatorWriter:
    def __init__(self, client: EnvdClient) -> None:
        self.client = client

    def set_alias(self, name: str, req_id: str, full_ids: dict[str, str]) -> Alias:
        return self.client.set_alias(name, req_id, full_ids)

    def delete_alias(self, name: str) -> Alias:
        return self.client.delete_alias(name)

    def delete_environment(
        self, req_id: str, platform: str, full_id: str, *, force: bool
    ) -> Deletion:
        return self.client.delete_environment(req_id, platform, full_id, force=force)

    def collect_garbage(self, *, dry_run: bool, grace: float) -> GarbageReport:
        return self.client.collect_garbage(dry_run=dry_run, grace=grace)


class StoreWriter:
    """The embedded default: no coordinator runs, no token applies (the home is the user's);
    moves are recorded as the local user's. `scratch` is the embedded agent's temp folder,
    which garbage collection also clears of what a killed run left."""

    def __init__(self, reader: StoreReader, user: str, scratch: Path) -> None:
        self.reader = reader
        self.user = user
        self.scratch = scratch

    def set_alias(self, name: str, req_id: str, full_ids: dict[str, str]) -> Alias:
        from envd.aliases import AliasTarget, parse_alias

        target = AliasTarget(req_id, full_ids)
        return self.reader.aliases.set(parse_alias(name), target, who=self.user, when=_now())

    def delete_alias(self, name: str) -> Alias:
        from envd.aliases import parse_alias

        return self.reader.aliases.delete(parse_alias(name), who=self.user, when=_now())

    def delete_environment(
        self, req_id: str, platform: str, full_id: str, *, force: bool
    ) -> Deletion:
        from envd.deletion import delete_environment

        return delete_environment(
            self.reader.catalog, self.reader.aliases, req_id, platform, full_id,
            force=force, who=self.user, when=_now(),
        )  # fmt: skip

    def collect_garbage(self, *, dry_run: bool, grace: float) -> GarbageReport:
        from dataclasses import replace

        from envd.garbage import collect_garbage
        from envd.store.url import open_store

        now = time.time()
        report = collect_garbage(
            open_store(self.reader.store_url), now=now, grace=grace, dry_run=dry_run
        )
        stale = _stale_scratch(self.scratch, now - grace)
        if not dry_run:
            for folder in stale:
                shutil.rmtree(folder, ignore_errors=True)
        return replace(report, removed=(*report.removed, *(str(f) for f in stale)))


def _stale_scratch(scratch: Path, older_than: float) -> list[Path]:
    """Job folders under the embedded agent's `archives-tmp/` last touched before the cutoff
    (a job in flight writes into its folder, so it is never that old)."""
    if not scratch.is_dir():
        return []
    return sorted(p for p in scratch.iterdir() if p.stat().st_mtime < older_than)


def _now() -> str:
    from envd.clock import rfc3339

    return rfc3339(time.time())
