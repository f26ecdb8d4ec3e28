"""Catalog over a real LocalStore: write order, newer-wins defaults, lookups; and key layout."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from envd.catalog import Catalog, DefaultPointer, EnvironmentSummary
from envd.description import (
    ResolvedBy,
    ResolvedPackage,
    SolverInfo,
    build_description,
)
from envd.errors import (
    CorruptDescriptionError,
    CorruptObjectError,
    EnvironmentNotFoundError,
    InvalidKeyError,
    UnknownPlatformError,
)
from envd.spec import CondaDependency, Spec
from envd.store.layout import (
    DescriptionKey,
    alias_key,
    built_key,
    default_key,
    description_key,
    environments_prefix,
    link_key,
    package_key,
    parse_description_key,
)
from envd.store.local import LocalStore

REQ_A = "a" * 40
REQ_B = "b" * 40
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
SPEC = Spec(conda=(CondaDependency(name="zlib", spec="zlib"),), channels=("conda-forge",))


def package(version: str) -> ResolvedPackage:
    return ResolvedPackage(
        kind="conda",
        name="zlib",
        version=version,
        build="h0_0",
        channel="conda-forge",
        url=f"https://conda.anaconda.org/conda-forge/linux-64/zlib-{version}-h0_0.conda",
        filename=f"zlib-{version}-h0_0.conda",
        sha256=version.replace(".", "")[0] * 64,
        md5=None,
        size=10,
        subdir="linux-64",
    )


def description(
    version: str, *, req_id: str = REQ_A, platform: str = "linux-64", at: datetime = T0
) -> dict[str, Any]:
    return build_description(
        req_id=req_id,
        platform=platform,
        spec=SPEC,
        packages=[package(version)],
        resolved_at=at,
        resolved_by=ResolvedBy(user="ada", agent="agent-1", host="h"),
        solver=SolverInfo(name="rattler", version="0.28.0"),
    )


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path)


@pytest.fixture
def catalog(store: LocalStore) -> Catalog:
    return Catalog(store)


def stored(catalog: Catalog, doc: dict[str, Any]) -> dict[str, Any]:
    catalog.write_description(doc)
    return doc


def test_write_description_is_create_only(catalog: Catalog) -> None:
    doc = description("1.2")
    assert catalog.write_description(doc) is True
    assert catalog.write_description(doc) is False
    assert catalog.read_description(REQ_A, "linux-64", doc["full_id"]) == doc


def test_write_description_validates_first(catalog: Catalog, store: LocalStore) -> None:
    doc = description("1.2")
    doc["packages"][0]["sha256"] = "short"
    with pytest.raises(CorruptDescriptionError, match=r"`packages\[0\]\.sha256`"):
        catalog.write_description(doc)
    assert store.list("") == []


def test_read_of_an_absent_description_says_not_found(catalog: Catalog, store: LocalStore) -> None:
    with pytest.raises(EnvironmentNotFoundError) as info:
        catalog.read_description(REQ_A, "linux-64", "c" * 40)
    assert info.value.message == (
        f"failed to find environment `{'c' * 40}` of `{REQ_A}` on `linux-64` in store `{store.url}`"
    )


def test_a_description_corrupted_on_disk_is_refused_naming_the_field(
    catalog: Catalog, store: LocalStore
) -> None:
    doc = stored(catalog, description("1.2"))
    key = description_key(REQ_A, "linux-64", doc["full_id"])
    broken = json.loads(store.get(key) or b"")
    del broken["packages"][0]["filename"]
    (store.root / key).write_text(json.dumps(broken))
    with pytest.raises(CorruptDescriptionError) as info:
        catalog.read_description(REQ_A, "linux-64", doc["full_id"])
    assert info.value.message == (
        f"failed to validate description `{key}`: `packages[0].filename` is missing"
    )


def test_a_description_under_the_wrong_key_is_refused(catalog: Catalog, store: LocalStore) -> None:
    doc = description("1.2")
    store.put_if_absent(
        description_key(REQ_B, "linux-64", doc["full_id"]), json.dumps(doc).encode()
    )
    with pytest.raises(CorruptDescriptionError, match="it describes"):
        catalog.read_description(REQ_B, "linux-64", doc["full_id"])


# defaults: write order and newer-wins


def test_set_default_refuses_without_the_description(catalog: Catalog, store: LocalStore) -> None:
    doc = description("1.2")
    with pytest.raises(EnvironmentNotFoundError):
        catalog.set_default(REQ_A, "linux-64", doc["full_id"], doc["resolved_at"])
    assert catalog.get_default(REQ_A, "linux-64") is None
    assert store.list("defaults/") == []


def test_set_default_points_at_a_stored_description(catalog: Catalog) -> None:
    doc = stored(catalog, description("1.2"))
    pointer = catalog.set_default(REQ_A, "linux-64", doc["full_id"], doc["resolved_at"])
    assert pointer == DefaultPointer(REQ_A, "linux-64", doc["full_id"], "2024-05-01T12:00:00Z")
    assert catalog.get_default(REQ_A, "linux-64") == pointer
    assert catalog.default_description(REQ_A, "linux-64") == doc
    assert catalog.default_description(REQ_A, "osx-arm64") is None


def test_a_newer_default_is_kept_over_an_older_one(catalog: Catalog) -> None:
    old = stored(catalog, description("1.2", at=T0))
    new = stored(catalog, description("1.3", at=T0 + timedelta(milliseconds=500)))
    newest = catalog.set_default(REQ_A, "linux-64", new["full_id"], new["resolved_at"])
    kept = catalog.set_default(REQ_A, "linux-64", old["full_id"], old["resolved_at"])
    assert kept == newest
    assert newest.resolved_at == "2024-05-01T12:00:00.500000Z"
    assert catalog.get_default(REQ_A, "linux-64") == newest


def test_a_newer_default_replaces_an_older_one(catalog: Catalog) -> None:
    old = stored(catalog, description("1.2", at=T0))
    new = stored(catalog, description("1.3", at=T0 + timedelta(days=1)))
    catalog.set_default(REQ_A, "linux-64", old["full_id"], old["resolved_at"])
    moved = catalog.set_default(REQ_A, "linux-64", new["full_id"], new["resolved_at"])
    assert moved.full_id == new["full_id"]
    assert catalog.get_default(REQ_A, "linux-64") == moved


def test_racing_set_default_settles_on_the_newest(catalog: Catalog, store: LocalStore) -> None:
    docs = [stored(catalog, description(f"1.{i}", at=T0 + timedelta(seconds=i))) for i in range(8)]

    def point(doc: dict[str, Any]) -> DefaultPointer:
        return Catalog(LocalStore(store.root)).set_default(
            REQ_A, "linux-64", doc["full_id"], doc["resolved_at"]
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(point, reversed(docs)))
    pointer = catalog.get_default(REQ_A, "linux-64")
    assert pointer is not None and pointer.full_id == docs[-1]["full_id"]


def test_set_default_refuses_a_malformed_time(catalog: Catalog) -> None:
    doc = stored(catalog, description("1.2"))
    with pytest.raises(InvalidKeyError, match="is not an RFC 3339 UTC time"):
        catalog.set_default(REQ_A, "linux-64", doc["full_id"], "yesterday")


def test_a_corrupt_pointer_is_reported_and_repaired_by_set_default(
    catalog: Catalog, store: LocalStore
) -> None:
    doc = stored(catalog, description("1.2"))
    store.put_if_absent(default_key(REQ_A, "linux-64"), b"{not json")
    with pytest.raises(CorruptObjectError, match="failed to read default pointer"):
        catalog.get_default(REQ_A, "linux-64")
    catalog.set_default(REQ_A, "linux-64", doc["full_id"], doc["resolved_at"])
    pointer = catalog.get_default(REQ_A, "linux-64")
    assert pointer is not None and pointer.full_id == doc["full_id"]


def test_a_pointer_to_a_missing_description_is_corrupt(catalog: Catalog, store: LocalStore) -> None:
    doc = stored(catalog, description("1.2"))
    catalog.set_default(REQ_A, "linux-64", doc["full_id"], doc["resolved_at"])
    store.delete(description_key(REQ_A, "linux-64", doc["full_id"]))
    # a fresh reader (another process): this catalog has the description in memory
    with pytest.raises(CorruptObjectError, match="whose description is missing"):
        Catalog(store).default_description(REQ_A, "linux-64")


def with_formats(doc: dict[str, Any]) -> dict[str, Any]:
    """The same environment with its archive cached (formats[] is all that differs)."""
    upgraded: dict[str, Any] = json.loads(json.dumps(doc))
    for p in upgraded["packages"]:
        p["formats"] = [
            {"format": ".conda", "filename": p["filename"], "sha256": p["sha256"],
             "size": p["size"], "transmuted_from": None}
        ]  # fmt: skip
    return upgraded


def test_descriptions_with_archives_are_served_from_memory(
    catalog: Catalog, store: LocalStore
) -> None:
    doc = stored(catalog, with_formats(description("1.2")))
    first = catalog.read_description(REQ_A, "linux-64", doc["full_id"])
    store.delete(description_key(REQ_A, "linux-64", doc["full_id"]))
    assert catalog.read_description(REQ_A, "linux-64", doc["full_id"]) is first
    with pytest.raises(EnvironmentNotFoundError):
        Catalog(store, cache_size=0).read_description(REQ_A, "linux-64", doc["full_id"])


def test_formats_may_grow_but_nothing_else_changes(catalog: Catalog) -> None:
    bare = stored(catalog, description("1.2"))
    assert catalog.read_description(REQ_A, "linux-64", bare["full_id"]) == bare  # not cached
    cached = with_formats(bare)
    assert catalog.write_description(cached) is True  # upgraded in place
    assert catalog.read_description(REQ_A, "linux-64", bare["full_id"]) == cached
    assert catalog.write_description(bare) is False  # never loses formats
    assert catalog.write_description(cached) is False  # nothing to add
    assert catalog.read_description(REQ_A, "linux-64", bare["full_id"]) == cached


# lookups


def test_find_by_full_id_finds_every_request_that_resolved_to_it(catalog: Catalog) -> None:
    one = stored(catalog, description("1.2", req_id=REQ_A))
    two = stored(catalog, description("1.2", req_id=REQ_B, platform="osx-arm64"))
    stored(catalog, description("1.3", req_id=REQ_A))
    assert one["full_id"] == two["full_id"]
    assert catalog.find_by_full_id(one["full_id"]) == [one, two]
    assert catalog.find_by_full_id("f" * 40) == []
    with pytest.raises(InvalidKeyError):
        catalog.find_by_full_id("nope")


def test_list_environments_marks_defaults_and_sorts_oldest_first(catalog: Catalog) -> None:
    later = stored(catalog, description("1.3", at=T0 + timedelta(hours=1)))
    earlier = stored(catalog, description("1.2", at=T0))
    other = stored(catalog, description("1.2", req_id=REQ_B, platform="win-64"))
    catalog.set_default(REQ_A, "linux-64", later["full_id"], later["resolved_at"])
    expected = [
        EnvironmentSummary(REQ_A, "linux-64", earlier["full_id"], "2024-05-01T12:00:00Z", False),
        EnvironmentSummary(REQ_A, "linux-64", later["full_id"], "2024-05-01T13:00:00Z", True),
        EnvironmentSummary(REQ_B, "win-64", other["full_id"], "2024-05-01T12:00:00Z", False),
    ]
    assert catalog.list_environments() == expected
    assert catalog.list_environments(REQ_A) == expected[:2]
    assert catalog.list_environments("c" * 40) == []


# layout


def test_layout_keys_follow_the_design() -> None:
    sha = "0" * 64
    assert description_key(REQ_A, "linux-64", REQ_B) == f"envs/{REQ_A}/linux-64/{REQ_B}.json"
    assert default_key(REQ_A, "osx-arm64") == f"defaults/{REQ_A}/osx-arm64.json"
    assert alias_key("ml_team", "train_env", "v1") == "aliases/ml_team/train_env/v1.json"
    assert package_key(sha, "zlib-1.3-h0_0.conda") == f"pkgs/{sha}/zlib-1.3-h0_0.conda"
    assert link_key(sha) == f"links/{sha}.json"
    assert built_key(sha, "cp311", "linux-64") == f"built/{sha}/cp311/linux-64.json"
    assert environments_prefix() == "envs/"
    assert environments_prefix(REQ_A) == f"envs/{REQ_A}/"


def test_parse_description_key_inverts_description_key() -> None:
    key = description_key(REQ_A, "win-64", REQ_B)
    assert parse_description_key(key) == DescriptionKey(REQ_A, "win-64", REQ_B)
    assert parse_description_key(f"envs/{REQ_A}/README.md") is None
    assert parse_description_key(f"envs/{REQ_A}/win-64/short.json") is None


def test_layout_refuses_bad_parts() -> None:
    with pytest.raises(InvalidKeyError, match=r"req_id `\.\./x` is not 40 lowercase hex"):
        default_key("../x", "linux-64")
    with pytest.raises(InvalidKeyError, match=r"full_id `A{40}` is not"):
        description_key(REQ_A, "linux-64", "A" * 40)
    with pytest.raises(UnknownPlatformError, match="unknown platform `linux-65`"):
        description_key(REQ_A, "linux-65", REQ_B)
    with pytest.raises(InvalidKeyError, match="sha256 `abc` is not 64"):
        link_key("abc")
    with pytest.raises(InvalidKeyError, match="holds `/`"):
        package_key("0" * 64, "../x.conda")
    with pytest.raises(InvalidKeyError, match="failed to use store key"):
        package_key("0" * 64, "..")
    for parts in [("..", "n", "t"), ("ns", "a/b", "t"), ("ns", "n", ""), ("ns", ".n", "t")]:
        with pytest.raises(InvalidKeyError, match="failed to build an alias key"):
            alias_key(*parts)
