"""The embedded default's fast path (`StoreReader.cache_hits`, no daemon started) answers PyPI
and mixed specs too, built wheels included (their full_id counts the source's sha256)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from lock_envs import built_wheel, packages, spec

from envd.catalog import Catalog
from envd.client.readers import StoreReader
from envd.description import ResolvedBy, SolverInfo, build_description
from envd.ids import req_id
from envd.progress import Outcome
from envd.store.local import LocalStore


def test_a_mixed_environment_with_a_built_wheel_is_a_cache_hit(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    mixed = spec()
    found = [*packages("linux-64"), built_wheel("crcmod", "1.7", "linux-64", "ab" * 32)]
    doc = build_description(
        req_id=req_id(mixed), platform="linux-64", spec=mixed, packages=found,
        resolved_at=datetime(2024, 6, 1, tzinfo=UTC),
        resolved_by=ResolvedBy("tester", "none", "tests"), solver=SolverInfo("s", "0"),
    )  # fmt: skip
    catalog = Catalog(store)
    catalog.write_description(doc)
    catalog.set_default(doc["req_id"], "linux-64", doc["full_id"], doc["resolved_at"])

    result = StoreReader(store.url).cache_hits(mixed, ["linux-64"], no_archives=True)

    assert result is not None and result.req_id == req_id(mixed)
    hit = result.events["linux-64"]
    assert (hit.outcome, hit.full_id) == (Outcome.CACHE_HIT, doc["full_id"])
    assert StoreReader(store.url).cache_hits(mixed, ["osx-arm64"], no_archives=True) is None
