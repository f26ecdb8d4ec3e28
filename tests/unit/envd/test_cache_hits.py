"""The cache-hit test the coordinator and the embedded client share."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from test_catalog import REQ_A, SPEC, T0, package

from envd.cache_hits import cache_hit
from envd.catalog import Catalog
from envd.description import PackageFormat, ResolvedBy, SolverInfo, build_description
from envd.progress import Outcome, ResolveEvent, Stage
from envd.store.local import LocalStore


def stored_default(catalog: Catalog, *, archives: bool) -> str:
    zlib = package("1.3")
    if archives:
        conda = PackageFormat(".conda", zlib.filename, zlib.sha256, 10)
        zlib = dataclasses.replace(zlib, formats=(conda,))
    doc = build_description(
        req_id=REQ_A, platform="linux-64", spec=SPEC, packages=[zlib], resolved_at=T0,
        resolved_by=ResolvedBy("ada", "agent-1", "h"), solver=SolverInfo("rattler", "0.28.0"),
    )  # fmt: skip
    catalog.write_description(doc)
    catalog.set_default(REQ_A, "linux-64", doc["full_id"], doc["resolved_at"])
    full_id: str = doc["full_id"]
    return full_id


def test_no_default_is_no_hit(tmp_path: Path) -> None:
    catalog = Catalog(LocalStore(tmp_path))
    assert cache_hit(catalog, REQ_A, "linux-64", no_archives=True) is None


def test_a_default_without_archives_is_a_hit_only_for_no_archives(tmp_path: Path) -> None:
    catalog = Catalog(LocalStore(tmp_path))
    full_id = stored_default(catalog, archives=False)
    assert cache_hit(catalog, REQ_A, "linux-64", no_archives=False) is None
    hit = cache_hit(catalog, REQ_A, "linux-64", no_archives=True)
    assert hit is not None and hit.description is not None
    assert hit == ResolveEvent(
        REQ_A, "linux-64", Stage.DONE, outcome=Outcome.CACHE_HIT, full_id=full_id,
        description=hit.description,
    )  # fmt: skip
    assert cache_hit(catalog, REQ_A, "osx-arm64", no_archives=True) is None


def test_a_default_with_archives_is_a_hit_for_every_request(tmp_path: Path) -> None:
    catalog = Catalog(LocalStore(tmp_path))
    full_id = stored_default(catalog, archives=True)
    for no_archives in (False, True):
        hit = cache_hit(catalog, REQ_A, "linux-64", no_archives=no_archives)
        assert hit is not None and hit.full_id == full_id
