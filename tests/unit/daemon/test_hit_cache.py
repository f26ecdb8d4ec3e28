"""The cache-hit fast path serves only what matches the current default pointer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from envd.catalog import Catalog
from envd.daemon.hit_cache import HitCache
from envd.description import ResolvedBy, ResolvedPackage, SolverInfo, build_description
from envd.spec import CondaDependency, Spec
from envd.store.local import LocalStore

REQ = "a" * 40
SPEC = Spec(conda=(CondaDependency(name="zlib", spec="zlib"),), channels=("conda-forge",))


class FakeClock:
    t = 1_700_000_000.0

    def now(self) -> float:
        return self.t


def resolve(catalog: Catalog, version: str, at: float) -> str:
    doc = build_description(
        req_id=REQ, platform="linux-64", spec=SPEC,
        packages=[ResolvedPackage(
            kind="conda", name="zlib", version=version, build="h0", channel="conda-forge",
            url=f"https://example.invalid/zlib-{version}-h0.conda",
            filename=f"zlib-{version}-h0.conda", sha256="1" * 64, md5=None, size=1,
            subdir="linux-64",
        )],
        resolved_at=datetime.fromtimestamp(at, UTC),
        resolved_by=ResolvedBy(user="u", agent="a", host="h"),
        solver=SolverInfo(name="rattler", version="0"),
    )  # fmt: skip
    catalog.write_description(doc)
    catalog.set_default(REQ, "linux-64", doc["full_id"], doc["resolved_at"])
    return str(doc["full_id"])


def test_fresh_answers_then_revalidation_by_pointer(tmp_path: Path) -> None:
    async def main() -> None:
        clock = FakeClock()
        catalog = Catalog(LocalStore(tmp_path))
        hits = HitCache(catalog, clock, fresh_for=1.0)
        assert hits.req_id_of(b"spec", lambda: REQ) == REQ
        assert hits.req_id_of(b"spec", lambda: "never computed again") == REQ
        assert hits.known_req_id(b"other") is None
        resolve(catalog, "1.0", clock.t)
        pointer = catalog.get_default(REQ, "linux-64")
        assert await hits.answers(REQ, ["linux-64"], False) is None
        hits.remember(REQ, "linux-64", False, b"answer-1", pointer)
        assert await hits.answers(REQ, ["linux-64"], False) == [b"answer-1"]
        assert await hits.answers(REQ, ["linux-64"], True) is None  # archives or not: apart
        assert await hits.answers(REQ, ["linux-64", "osx-64"], False) is None
        clock.t += 5  # stale, pointer unchanged: kept
        assert await hits.answers(REQ, ["linux-64"], False) == [b"answer-1"]
        resolve(catalog, "2.0", clock.t + 1)  # another coordinator moved the pointer
        assert await hits.answers(REQ, ["linux-64"], False) == [b"answer-1"]  # still fresh
        clock.t += 5
        assert await hits.answers(REQ, ["linux-64"], False) is None  # seen, dropped
        hits.remember(REQ, "linux-64", False, b"answer-2", catalog.get_default(REQ, "linux-64"))
        hits.forget(REQ, "linux-64")
        assert await hits.answers(REQ, ["linux-64"], False) is None
        hits.remember(REQ, "linux-64", False, b"answer-3", None)  # no pointer: not kept
        assert await hits.answers(REQ, ["linux-64"], False) is None

    asyncio.run(main())


def test_entries_are_bounded(tmp_path: Path) -> None:
    async def main() -> None:
        clock = FakeClock()
        hits = HitCache(Catalog(LocalStore(tmp_path)), clock, entries=2)
        for i in range(3):
            hits.req_id_of(str(i).encode(), lambda i=i: str(i) * 40)  # type: ignore[misc]
            hits.remember(str(i) * 40, "linux-64", False, b"x", object())
        assert hits.known_req_id(b"0") is None and hits.known_req_id(b"2") == "2" * 40
        assert await hits.answers("0" * 40, ["linux-64"], False) is None
        assert await hits.answers("2" * 40, ["linux-64"], False) == [b"x"]

    asyncio.run(main())


def test_edges_of_freshness_size_and_forgetting(tmp_path: Path) -> None:
    async def main() -> None:
        clock = FakeClock()
        catalog = Catalog(LocalStore(tmp_path))
        hits = HitCache(catalog, clock)
        assert (hits.fresh_for, hits.entries) == (1.0, 4096)  # as docs/architecture.md says
        resolve(catalog, "1.0", clock.t)
        hits.remember(REQ, "linux-64", False, b"old", catalog.get_default(REQ, "linux-64"))
        resolve(catalog, "2.0", clock.t + 1)
        clock.t += hits.fresh_for  # exactly fresh_for later: still served as is
        assert await hits.answers(REQ, ["linux-64"], False) == [b"old"]
        two = HitCache(catalog, clock, entries=2)
        two.remember("1" * 40, "linux-64", False, b"a", object())
        two.remember("2" * 40, "linux-64", False, b"b", object())
        assert await two.answers("1" * 40, ["linux-64"], False) == [b"a"]  # two fit in two
        pointer = catalog.get_default(REQ, "linux-64")
        hits.remember(REQ, "linux-64", True, b"bare", pointer)
        hits.remember(REQ, "linux-64", False, b"full", pointer)
        hits.forget(REQ, "linux-64")  # both kinds go
        assert await hits.answers(REQ, ["linux-64"], True) is None
        assert await hits.answers(REQ, ["linux-64"], False) is None

    asyncio.run(main())
