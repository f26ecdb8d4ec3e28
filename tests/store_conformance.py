"""The conformance suite every `Store` backend runs: subclass `StoreConformance`, give `store`.

    class TestS3Store(StoreConformance):
        @pytest.fixture
        def store(self) -> Store:
            return S3Store(...)  # a fresh, empty store per test

The racing tests open the store again in child processes (spawn) with `open_store(store.url)`;
a backend whose children need more than its URL overrides `opener` with a picklable
module-level function.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import time
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest

from envd.alias_book import AliasBook
from envd.aliases import AliasTarget, parse_alias
from envd.catalog import Catalog
from envd.description import ResolvedBy, ResolvedPackage, SolverInfo, build_description
from envd.errors import AliasConflictError, InvalidKeyError, PreconditionFailed, StoreError
from envd.spec import CondaDependency, Spec
from envd.store.base import Store
from envd.store.url import open_store

RACERS = 8
_START_TIMEOUT = 60.0

BAD_KEYS = [
    "",
    "/abs/key",
    "..",
    "../escape",
    "a/../../escape",
    "a/./b",
    "a//b",
    "a/b/",
    ".hidden",
    "a/.b.lock",
    "a\\b",
    "a/b\x00c",
]


def race_put(
    opener: Callable[[str], Store],
    url: str,
    key: str,
    racer: int,
    start: Barrier,
    results: Any,
) -> None:
    """Child: wait for every racer, then try to create `key` with this racer's bytes."""
    try:
        store = opener(url)
        start.wait(_START_TIMEOUT)
        results.put((racer, store.put_if_absent(key, payload(racer))))
    except BaseException as err:  # reported to the parent, which fails the test
        results.put((racer, f"error: {err!r}"))


def race_swap(
    opener: Callable[[str], Store],
    url: str,
    key: str,
    expected: str | None,
    racer: int,
    start: Barrier,
    results: Any,
) -> None:
    """Child: wait for every racer, then compare-and-swap from the same `expected` version."""
    try:
        store = opener(url)
        start.wait(_START_TIMEOUT)
        try:
            store.compare_and_swap(key, expected, payload(racer))
        except PreconditionFailed:
            results.put((racer, False))
        else:
            results.put((racer, True))
    except BaseException as err:
        results.put((racer, f"error: {err!r}"))


def payload(racer: int) -> bytes:
    return f"racer {racer}\n".encode() * (1000 + racer)


def run_racers(target: Callable[..., None], *args: Any) -> dict[int, bool]:
    """Start RACERS spawned processes on `target(*args, racer, start, results)`; collect."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(RACERS)
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, i, start, results)) for i in range(RACERS)]
    for proc in procs:
        proc.start()
    outcomes: dict[int, bool] = {}
    try:
        for _ in procs:
            racer, outcome = results.get(timeout=_START_TIMEOUT)
            assert isinstance(outcome, bool), f"racer {racer} failed: {outcome}"
            outcomes[racer] = outcome
    except queue_module.Empty:
        pytest.fail(f"racers did not all report: got {sorted(outcomes)}")
    finally:
        for proc in procs:
            proc.join(_START_TIMEOUT)
            if proc.is_alive():
                proc.kill()
                proc.join()
        results.close()
        results.join_thread()
    return outcomes


class StoreConformance:
    """What every backend promises; subclasses provide a fresh `store` fixture."""

    opener: ClassVar[Callable[[str], Store]] = staticmethod(open_store)

    @pytest.fixture
    def store(self) -> Store:
        raise NotImplementedError("a backend's test class provides a fresh store")

    # streaming files

    def test_put_file_if_absent_streams_and_is_create_only(
        self, store: Store, tmp_path: Path
    ) -> None:
        big = tmp_path / "big.conda"
        with big.open("wb") as f:  # over one part (8 MiB) so multipart paths run
            for i in range(10):
                f.write(bytes([i]) * (1024 * 1024))
        assert store.put_file_if_absent("pkgs/cc/big.conda", big) is True
        other = tmp_path / "other"
        other.write_bytes(b"different")
        assert store.put_file_if_absent("pkgs/cc/big.conda", other) is False
        info = store.stat("pkgs/cc/big.conda")
        assert info is not None and info.size == 10 * 1024 * 1024
        dest = tmp_path / "out" / "big.conda"
        dest.parent.mkdir()
        assert store.download("pkgs/cc/big.conda", dest) is True
        assert dest.read_bytes() == big.read_bytes()
        assert sorted(p.name for p in dest.parent.iterdir()) == ["big.conda"]

    def test_download_of_an_absent_key_writes_nothing(self, store: Store, tmp_path: Path) -> None:
        dest = tmp_path / "missing.conda"
        assert store.download("pkgs/dd/missing.conda", dest) is False
        assert list(tmp_path.iterdir()) == []

    def test_put_file_of_a_missing_file_leaves_no_object(
        self, store: Store, tmp_path: Path
    ) -> None:
        with pytest.raises(OSError):
            store.put_file_if_absent("pkgs/ee/x.conda", tmp_path / "does-not-exist")
        assert store.get("pkgs/ee/x.conda") is None
        assert store.list("pkgs/ee") == []

    # put_if_absent / get / stat

    def test_put_if_absent_creates_once(self, store: Store) -> None:
        assert store.put_if_absent("pkgs/aa/x.conda", b"first") is True
        assert store.put_if_absent("pkgs/aa/x.conda", b"second") is False
        assert store.get("pkgs/aa/x.conda") == b"first"

    def test_absent_key_reads_as_none(self, store: Store) -> None:
        assert store.get("nope/missing.json") is None
        assert store.get_versioned("nope/missing.json") is None
        assert store.stat("nope/missing.json") is None

    def test_round_trips_binary_and_empty_data(self, store: Store) -> None:
        blob = bytes(range(256)) * 64
        assert store.put_if_absent("bin/blob", blob)
        assert store.put_if_absent("bin/empty", b"")
        assert store.get("bin/blob") == blob
        assert store.get("bin/empty") == b""

    def test_stat_reports_size_and_the_version_get_versioned_sees(self, store: Store) -> None:
        store.put_if_absent("a/b.json", b"12345")
        info = store.stat("a/b.json")
        versioned = store.get_versioned("a/b.json")
        assert info is not None and versioned is not None
        assert (info.key, info.size) == ("a/b.json", 5)
        assert versioned == (b"12345", info.version)

    # list / delete

    def test_list_is_sorted_and_filtered_by_prefix(self, store: Store) -> None:
        keys = ["envs/b/linux-64/2.json", "envs/a/osx-64/1.json", "envs/ab/x.json", "pkgs/z"]
        for key in keys:
            store.put_if_absent(key, b"{}")
        assert store.list("") == sorted(keys)
        assert store.list("envs/") == sorted(keys[:3])
        assert store.list("envs/a") == ["envs/a/osx-64/1.json", "envs/ab/x.json"]
        assert store.list("envs/a/") == ["envs/a/osx-64/1.json"]
        assert store.list("envs/c/") == []
        assert store.list("missing/") == []

    def test_delete_removes_and_ignores_absent(self, store: Store) -> None:
        store.put_if_absent("d/k", b"x")
        store.delete("d/k")
        assert store.get("d/k") is None
        assert store.list("d/") == []
        store.delete("d/k")
        store.delete("never/was/here")
        assert store.put_if_absent("d/k", b"again") is True

    # compare_and_swap

    def test_swap_from_none_creates_only_when_absent(self, store: Store) -> None:
        version = store.compare_and_swap("defaults/p.json", None, b"one")
        assert store.get_versioned("defaults/p.json") == (b"one", version)
        with pytest.raises(PreconditionFailed, match=r"failed to swap `defaults/p\.json`"):
            store.compare_and_swap("defaults/p.json", None, b"two")
        assert store.get("defaults/p.json") == b"one"

    def test_swap_from_the_current_version_replaces(self, store: Store) -> None:
        first = store.compare_and_swap("defaults/p.json", None, b"one")
        second = store.compare_and_swap("defaults/p.json", first, b"two")
        assert second != first
        assert store.get_versioned("defaults/p.json") == (b"two", second)
        stat = store.stat("defaults/p.json")
        assert stat is not None and stat.version == second

    def test_swap_from_a_stale_version_fails_and_keeps_data(self, store: Store) -> None:
        first = store.compare_and_swap("defaults/p.json", None, b"one")
        store.compare_and_swap("defaults/p.json", first, b"two")
        with pytest.raises(PreconditionFailed):
            store.compare_and_swap("defaults/p.json", first, b"three")
        assert store.get("defaults/p.json") == b"two"

    def test_swap_of_an_absent_key_with_a_version_fails(self, store: Store) -> None:
        version = store.compare_and_swap("defaults/p.json", None, b"one")
        store.delete("defaults/p.json")
        with pytest.raises(PreconditionFailed):
            store.compare_and_swap("defaults/p.json", version, b"two")
        assert store.get("defaults/p.json") is None

    def test_swap_works_on_an_object_put_if_absent_made(self, store: Store) -> None:
        store.put_if_absent("aliases/ns/n/t.json", b"one")
        versioned = store.get_versioned("aliases/ns/n/t.json")
        assert versioned is not None
        store.compare_and_swap("aliases/ns/n/t.json", versioned[1], b"two")
        assert store.get("aliases/ns/n/t.json") == b"two"

    # keys

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_bad_keys_are_refused_everywhere(self, store: Store, key: str) -> None:
        calls: list[Callable[[], object]] = [
            lambda: store.put_if_absent(key, b"x"),
            lambda: store.get(key),
            lambda: store.get_versioned(key),
            lambda: store.stat(key),
            lambda: store.compare_and_swap(key, None, b"x"),
            lambda: store.delete(key),
        ]
        for call in calls:
            with pytest.raises(InvalidKeyError, match="failed to use store key"):
                call()
        assert store.list("") == []

    @pytest.mark.parametrize("prefix", ["/abs", "../", "a//", "a/../b", ".hidden"])
    def test_bad_prefixes_are_refused(self, store: Store, prefix: str) -> None:
        with pytest.raises(StoreError, match="failed to use store key"):
            store.list(prefix)

    def test_list_shows_only_finished_objects(self, store: Store) -> None:
        expected = set()
        for i in range(5):
            key = f"envs/r/linux-64/{i}.json"
            store.put_if_absent(key, b"x" * i)
            expected.add(key)
        version = store.compare_and_swap("defaults/r/linux-64.json", None, b"a")
        store.compare_and_swap("defaults/r/linux-64.json", version, b"b")
        store.delete("envs/r/linux-64/0.json")
        expected.add("defaults/r/linux-64.json")
        expected.discard("envs/r/linux-64/0.json")
        assert store.list("") == sorted(expected)

    def test_stat_says_when_an_object_was_written(self, store: Store) -> None:
        store.put_if_absent("pkgs/when/x.conda", b"x")
        info = store.stat("pkgs/when/x.conda")
        assert info is not None and info.modified is not None
        assert abs(info.modified - time.time()) < 600  # the store's clock, close to ours

    # aliases: every move one compare-and-swap

    def test_an_alias_move_that_loses_the_swap_is_a_conflict_and_nothing_is_lost(
        self, store: Store
    ) -> None:
        catalog = Catalog(store)
        first, second, third = (_description(store, catalog, v) for v in ("1.1", "1.2", "1.3"))
        name = parse_alias("team/env")
        AliasBook(store, catalog).set(name, first, who="ada", when="t1")
        rival = AliasBook(store, Catalog(store))
        racing = _Interleaved(store, lambda: rival.set(name, second, who="bob", when="t2"))
        with pytest.raises(AliasConflictError, match="another writer moved it first; it now"):
            AliasBook(cast(Store, racing), catalog).set(name, third, who="cy", when="t3")
        record = AliasBook(store, catalog).get(name)
        assert [(m.who, m.after) for m in record.history] == [("ada", first), ("bob", second)]
        version = parse_alias("team/env:v1")
        AliasBook(store, catalog).set(version, first, who="ada", when="t4")
        with pytest.raises(AliasConflictError, match="write-once"):
            AliasBook(store, catalog).set(version, second, who="bob", when="t5")
        assert AliasBook(store, catalog).get(version).target == first

    # many processes

    def test_racing_put_if_absent_has_exactly_one_winner(self, store: Store) -> None:
        outcomes = run_racers(race_put, type(self).opener, store.url, "pkgs/race/x.conda")
        winners = [racer for racer, won in outcomes.items() if won]
        assert len(winners) == 1, outcomes
        assert store.get("pkgs/race/x.conda") == payload(winners[0])
        assert store.list("pkgs/") == ["pkgs/race/x.conda"]

    @pytest.mark.parametrize("existing", [False, True])
    def test_racing_swaps_from_one_version_have_exactly_one_winner(
        self, store: Store, existing: bool
    ) -> None:
        key = "defaults/race/linux-64.json"
        expected = store.compare_and_swap(key, None, b"start") if existing else None
        outcomes = run_racers(race_swap, type(self).opener, store.url, key, expected)
        winners = [racer for racer, won in outcomes.items() if won]
        assert len(winners) == 1, outcomes
        assert store.get(key) == payload(winners[0])
        assert store.list("defaults/") == [key]


class _Interleaved:
    """The store, except that its next compare-and-swap first lets a rival writer run."""

    def __init__(self, store: Store, rival: Callable[[], object]) -> None:
        self._store = store
        self._rival: Callable[[], object] | None = rival

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def compare_and_swap(self, key: str, expected_version: str | None, data: bytes) -> str:
        rival, self._rival = self._rival, None
        if rival is not None:
            rival()
        return self._store.compare_and_swap(key, expected_version, data)


def _description(store: Store, catalog: Catalog, version: str) -> AliasTarget:
    """A description of zlib `version` on linux-64, written; what an alias would name."""
    spec = Spec(conda=(CondaDependency(name="zlib", spec="zlib"),), channels=("conda-forge",))
    package = ResolvedPackage(
        kind="conda", name="zlib", version=version, build="h0_0", channel="conda-forge",
        url=f"https://conda.anaconda.org/conda-forge/linux-64/zlib-{version}-h0_0.conda",
        filename=f"zlib-{version}-h0_0.conda", sha256=version[-1] * 64, md5=None, size=10,
        subdir="linux-64",
    )  # fmt: skip
    doc = build_description(
        req_id="a" * 40, platform="linux-64", spec=spec, packages=[package],
        resolved_at=datetime(2024, 5, 1, tzinfo=UTC), resolved_by=ResolvedBy("ada", "a", "h"),
        solver=SolverInfo("rattler", "0.28.0"),
    )  # fmt: skip
    catalog.write_description(doc)
    return AliasTarget(doc["req_id"], {"linux-64": doc["full_id"]})
