"""Catalog over a real LocalStore: write order, newer-wins defaults, lookups; and key layout."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import envd.description as description_module
from envd.catalog import Catalog, EnvironmentSummary
from envd.default_pointer import DefaultPointer
from envd.description import (
    PackageFormat,
    ResolvedBy,
    ResolvedPackage,
    SolverInfo,
    build_description,
    decode_description,
    description_digest,
    seal_description,
)
from envd.errors import (
    CorruptDescriptionError,
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
    version: str,
    *,
    req_id: str = REQ_A,
    platform: str = "linux-64",
    at: datetime = T0,
    packages: tuple[ResolvedPackage, ...] = (),
) -> dict[str, Any]:
    return build_description(
        req_id=req_id,
        platform=platform,
        spec=SPEC,
        packages=packages or [package(version)],
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


def test_an_unvalidated_draft_is_refused_by_the_write_as_by_the_builder(
    catalog: Catalog, store: LocalStore
) -> None:
    """The agent leaves validation to the write, so that it happens once."""
    bad = replace(package("1.2"), sha256="short")  # as a broken index could say
    made: dict[str, Any] = {
        "req_id": REQ_A, "platform": "linux-64", "spec": SPEC, "packages": [bad],
        "resolved_at": T0, "resolved_by": ResolvedBy(user="ada", agent="agent-1", host="h"),
        "solver": SolverInfo(name="rattler", version="0.28.0"),
    }  # fmt: skip
    with pytest.raises(CorruptDescriptionError, match=r"`packages\[0\]\.sha256`"):
        build_description(**made)
    with pytest.raises(CorruptDescriptionError, match=r"`packages\[0\]\.sha256`"):
        catalog.write_description(build_description(**made, validate=False))
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
    assert pointer == DefaultPointer(
        REQ_A, "linux-64", doc["full_id"], "2024-05-01T12:00:00Z", doc["digest"]
    )
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


def test_a_garbage_pointer_is_no_default_with_a_warning_and_set_default_replaces_it(
    catalog: Catalog, store: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    doc = stored(catalog, description("1.2"))
    key = default_key(REQ_A, "linux-64")
    store.put_if_absent(key, b"{not json")
    assert catalog.get_default(REQ_A, "linux-64") is None
    assert catalog.default_description(REQ_A, "linux-64") is None
    assert caplog.messages[0] == (
        f"failed to read default pointer `{key}` in store `{store.url}`: not a valid "
        "`envd-default-v1` document; treated as no default"
    )
    catalog.set_default(REQ_A, "linux-64", doc["full_id"], doc["resolved_at"])
    assert catalog.default_description(REQ_A, "linux-64") == doc


def test_a_pointer_to_a_missing_description_is_no_default_until_replaced(
    catalog: Catalog, store: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    doc = stored(catalog, description("1.2"))
    catalog.set_default(REQ_A, "linux-64", doc["full_id"], doc["resolved_at"])
    store.delete(description_key(REQ_A, "linux-64", doc["full_id"]))
    # a fresh reader (another process): this catalog has the description in memory
    fresh = Catalog(store)
    assert fresh.default_description(REQ_A, "linux-64") is None
    assert caplog.messages == [
        f"default of `{REQ_A}` on `linux-64` points at `{doc['full_id']}`: failed to find "
        f"environment `{doc['full_id']}` of `{REQ_A}` on `linux-64` in store `{store.url}`; "
        "treated as no default"
    ]
    # what `--force` does: the agent writes the description anew, the coordinator points at it
    again = stored(fresh, description("1.2", at=T0 - timedelta(days=1)))
    fresh.set_default(REQ_A, "linux-64", again["full_id"], again["resolved_at"])
    assert fresh.default_description(REQ_A, "linux-64") == again


def test_a_newer_pointer_to_a_corrupt_description_is_replaced_by_an_older_good_one(
    catalog: Catalog, store: LocalStore
) -> None:
    old = stored(catalog, description("1.2", at=T0))
    new = stored(catalog, description("1.3", at=T0 + timedelta(days=1)))
    catalog.set_default(REQ_A, "linux-64", new["full_id"], new["resolved_at"])
    truncate(store, description_key(REQ_A, "linux-64", new["full_id"]))
    fresh = Catalog(store)
    assert fresh.default_description(REQ_A, "linux-64") is None
    pointer = fresh.set_default(REQ_A, "linux-64", old["full_id"], old["resolved_at"])
    assert pointer.full_id == old["full_id"]
    assert fresh.default_description(REQ_A, "linux-64") == old


def truncate(store: LocalStore, key: str) -> None:
    path = store.root / key
    path.write_bytes(path.read_bytes()[:100])


def with_formats(doc: dict[str, Any]) -> dict[str, Any]:
    """The same environment with its archive cached (formats[] is all that differs)."""
    upgraded: dict[str, Any] = json.loads(json.dumps(doc))
    for p in upgraded["packages"]:
        p["formats"] = [
            {"format": ".conda", "filename": p["filename"], "sha256": p["sha256"],
             "size": p["size"], "transmuted_from": None}
        ]  # fmt: skip
    return seal_description(upgraded)


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
    assert (
        alias_key("ml_team", "vision/train", "latest") == "aliases/ml_team/vision/train/latest.json"
    )
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
    bad = [("..", "n", "t"), ("ns", "a//b", "t"), ("ns", "n", ""), ("ns", ".n", "t"),
           ("ns", "n.json/x", "t"), ("NS", "n", "t")]  # fmt: skip
    for parts in bad:
        with pytest.raises(InvalidKeyError, match="failed to build an alias key"):
            alias_key(*parts)


# every stored byte verified


def rich_description() -> dict[str, Any]:
    """A description whose package carries every field a tamperer could reach."""
    archived = replace(
        package("1.2"),
        md5="d" * 32,
        depends=("libgcc >=13",),
        formats=(PackageFormat(".conda", "zlib-1.2-h0_0.conda", "1" * 64, 10),),
    )
    return description("1.2", packages=(archived,))


def rewrite(store: LocalStore, key: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Edit a stored description in place, as someone with write access to the store could."""
    doc = json.loads(store.get(key) or b"")
    change(doc)
    (store.root / key).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def _package(doc: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = doc["packages"][0]
    return first


TAMPERS: dict[str, Callable[[dict[str, Any]], None]] = {
    "url": lambda d: _package(d).update(url="https://evil.example/zlib-1.2-h0_0.conda"),
    "depends": lambda d: _package(d)["depends"].append("evil"),
    "md5": lambda d: _package(d).update(md5="e" * 32),
    "formats[].sha256": lambda d: _package(d)["formats"][0].update(sha256="2" * 64),
    "formats[] dropped": lambda d: _package(d).update(formats=[]),
    "version": lambda d: _package(d).update(version="1.3"),
    "resolved_by": lambda d: d["resolved_by"].update(user="mallory"),
}


@pytest.mark.parametrize("field", sorted(TAMPERS))
def test_a_tampered_description_is_refused_and_never_served_as_the_default(
    catalog: Catalog, store: LocalStore, field: str
) -> None:
    doc = stored(catalog, rich_description())
    catalog.set_default(REQ_A, "linux-64", doc["full_id"], doc["resolved_at"])
    key = description_key(REQ_A, "linux-64", doc["full_id"])
    rewrite(store, key, TAMPERS[field])
    fresh = Catalog(store)  # another process, or this one after the copy left memory
    with pytest.raises(CorruptDescriptionError, match=rf"failed to validate description `{key}`"):
        fresh.read_description(REQ_A, "linux-64", doc["full_id"])
    assert fresh.default_description(REQ_A, "linux-64") is None  # no cache hit: resolved anew
    assert fresh.list_environments() == []
    # what the next resolve does: the agent's write replaces the tampered copy, the
    # coordinator's set_default points at it
    assert fresh.write_description(doc) is True
    fresh.set_default(REQ_A, "linux-64", doc["full_id"], doc["resolved_at"])
    assert Catalog(store).default_description(REQ_A, "linux-64") == doc


def test_tampering_names_the_digest_when_no_other_check_fails(
    catalog: Catalog, store: LocalStore
) -> None:
    doc = stored(catalog, rich_description())
    key = description_key(REQ_A, "linux-64", doc["full_id"])
    rewrite(store, key, TAMPERS["url"])
    tampered = json.loads(store.get(key) or b"")
    with pytest.raises(CorruptDescriptionError) as info:
        Catalog(store).read_description(REQ_A, "linux-64", doc["full_id"])
    assert info.value.message == (
        f"failed to validate description `{key}`: `digest` is `{doc['digest']}` but the "
        f"content hashes to `{description_digest(tampered)}`"
    )


def test_every_leaf_of_a_description_is_covered_by_its_digest(store: LocalStore) -> None:
    doc = rich_description()
    key = description_key(REQ_A, "linux-64", doc["full_id"])
    leaves = list(_leaves(doc))
    assert len(leaves) > 30
    for path in leaves:
        if path == ("digest",):
            continue
        changed = json.loads(json.dumps(doc))
        _flip(changed, path)
        with pytest.raises(CorruptDescriptionError):
            decode_description(encode_unchecked(changed), key)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _leaves(item, (*path, name))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path


def _flip(doc: Any, path: tuple[Any, ...]) -> None:
    """Change the leaf at `path` to another value of the same type (null becomes a string)."""
    *parents, last = path
    for part in parents:
        doc = doc[part]
    value = doc[last]
    if isinstance(value, bool):
        doc[last] = not value
    elif isinstance(value, int):
        doc[last] = value + 1
    elif isinstance(value, str):
        doc[last] = value[:-1] + ("0" if value[-1:] != "0" else "1")
    elif value is None:
        doc[last] = "0" * 64
    else:  # an empty list
        doc[last] = ["x"]


def encode_unchecked(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def test_a_description_written_before_digests_is_refused_then_replaced(
    catalog: Catalog, store: LocalStore
) -> None:
    doc = rich_description()
    key = description_key(REQ_A, "linux-64", doc["full_id"])
    legacy = {k: v for k, v in doc.items() if k != "digest"}
    store.put_if_absent(key, encode_unchecked(legacy))
    with pytest.raises(CorruptDescriptionError) as info:
        catalog.read_description(REQ_A, "linux-64", doc["full_id"])
    assert info.value.message == (
        f"failed to validate description `{key}`: `digest` is missing: written before envd "
        "sealed descriptions, it cannot be verified"
    )
    assert catalog.write_description(doc) is True
    assert catalog.read_description(REQ_A, "linux-64", doc["full_id"]) == doc


def test_a_pointer_without_a_digest_is_not_trusted_and_is_replaced(
    catalog: Catalog, store: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    doc = stored(catalog, rich_description())
    legacy = {"schema": "envd-default-v1", "req_id": REQ_A, "platform": "linux-64",
              "full_id": doc["full_id"], "resolved_at": "2030-01-01T00:00:00Z"}  # fmt: skip
    store.put_if_absent(default_key(REQ_A, "linux-64"), json.dumps(legacy).encode())
    assert catalog.get_default(REQ_A, "linux-64") == DefaultPointer(
        REQ_A, "linux-64", doc["full_id"], "2030-01-01T00:00:00Z", None
    )
    assert catalog.default_description(REQ_A, "linux-64") is None
    assert caplog.messages == [
        f"default of `{REQ_A}` on `linux-64` predates description digests and cannot be "
        "verified; treated as no default"
    ]
    # newer by its time, but unverifiable: the next resolve's default replaces it
    pointer = catalog.set_default(REQ_A, "linux-64", doc["full_id"], doc["resolved_at"])
    assert pointer.digest == doc["digest"]
    assert catalog.default_description(REQ_A, "linux-64") == doc


def test_the_pointer_follows_a_description_that_gained_formats(
    catalog: Catalog, store: LocalStore
) -> None:
    bare = stored(catalog, description("1.2"))
    catalog.set_default(REQ_A, "linux-64", bare["full_id"], bare["resolved_at"])
    assert catalog.default_description(REQ_A, "linux-64") == bare
    cached = with_formats(bare)
    assert catalog.write_description(cached) is True
    other = Catalog(store)  # e.g. another coordinator, reading between the two writes
    assert other.default_description(REQ_A, "linux-64") is None  # swapped, pointer not yet
    # the coordinator finishing the job moves the pointer (same time: ties go to the caller)
    pointer = catalog.set_default(REQ_A, "linux-64", cached["full_id"], cached["resolved_at"])
    assert pointer.digest == cached["digest"] != bare["digest"]
    assert other.default_description(REQ_A, "linux-64") == cached
    assert catalog.default_description(REQ_A, "linux-64") == cached


def test_a_cache_hit_from_memory_reads_the_pointer_and_hashes_nothing(
    catalog: Catalog, store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = stored(catalog, rich_description())
    catalog.set_default(REQ_A, "linux-64", doc["full_id"], doc["resolved_at"])
    hashed = []
    real = description_module.description_digest

    def counting(value: dict[str, Any]) -> str:
        hashed.append(value["full_id"])
        return real(value)

    monkeypatch.setattr(description_module, "description_digest", counting)
    fresh = Catalog(store)
    for _ in range(5):
        assert fresh.default_description(REQ_A, "linux-64") == doc
    assert len(hashed) == 1  # verified once, when read from the store
    rewrite(store, description_key(REQ_A, "linux-64", doc["full_id"]), TAMPERS["url"])
    # the copy in memory is what was verified, and the pointer still names it
    assert fresh.default_description(REQ_A, "linux-64") == doc
    assert len(hashed) == 1


def test_a_description_not_matching_its_pointer_is_refused(
    catalog: Catalog, store: LocalStore
) -> None:
    doc = stored(catalog, rich_description())
    key = description_key(REQ_A, "linux-64", doc["full_id"])
    with pytest.raises(CorruptDescriptionError) as info:
        Catalog(store).read_description(
            REQ_A, "linux-64", doc["full_id"], digest="sha256:" + "0" * 64
        )
    assert info.value.message == (
        f"failed to verify description `{key}`: its digest is `{doc['digest']}`, its default "
        f"pointer says `sha256:{'0' * 64}`"
    )


# one corrupt object blocks nothing else


def test_list_skips_and_reports_a_truncated_description_and_a_garbage_pointer(
    catalog: Catalog, store: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    good = stored(catalog, description("1.2", req_id=REQ_B))
    bad = stored(catalog, description("1.3"))
    also = stored(catalog, description("1.2", platform="osx-arm64"))
    bad_key = description_key(REQ_A, "linux-64", bad["full_id"])
    truncate(store, bad_key)
    pointer_key = default_key(REQ_A, "osx-arm64")
    store.put_if_absent(pointer_key, b"\x00garbage")
    listing = Catalog(store).scan_environments()
    assert [(s.req_id, s.platform, s.is_default) for s in listing.environments] == [
        (REQ_A, "osx-arm64", False),
        (REQ_B, "linux-64", False),
    ]
    assert [u.key for u in listing.unreadable] == [bad_key, pointer_key]
    assert listing.unreadable[0].reason.startswith(
        f"failed to read description `{bad_key}`: invalid JSON"
    )
    assert listing.unreadable[1].reason == (
        f"failed to read default pointer `{pointer_key}` in store `{store.url}`: not a valid "
        "`envd-default-v1` document"
    )
    assert [s.full_id for s in Catalog(store).list_environments()] == [
        also["full_id"],
        good["full_id"],
    ]
    assert caplog.messages[0].startswith(f"skipped unreadable `{bad_key}`: failed to read")


def test_find_by_full_id_skips_a_corrupt_copy_and_raises_only_if_none_is_left(
    catalog: Catalog, store: LocalStore
) -> None:
    one = stored(catalog, description("1.2", req_id=REQ_A))
    two = stored(catalog, description("1.2", req_id=REQ_B))
    truncate(store, description_key(REQ_A, "linux-64", one["full_id"]))
    assert Catalog(store).find_by_full_id(one["full_id"]) == [two]
    truncate(store, description_key(REQ_B, "linux-64", two["full_id"]))
    with pytest.raises(CorruptDescriptionError, match="invalid JSON"):
        Catalog(store).find_by_full_id(one["full_id"])


def test_write_description_replaces_a_corrupt_copy_so_force_can_repair(
    catalog: Catalog, store: LocalStore
) -> None:
    doc = stored(catalog, description("1.2"))
    catalog.set_default(REQ_A, "linux-64", doc["full_id"], doc["resolved_at"])
    key = description_key(REQ_A, "linux-64", doc["full_id"])
    truncate(store, key)
    fresh = Catalog(store)
    assert fresh.default_description(REQ_A, "linux-64") is None
    again = description("1.2", at=T0 + timedelta(hours=1))
    assert fresh.write_description(again) is True
    pointer = fresh.set_default(REQ_A, "linux-64", again["full_id"], again["resolved_at"])
    assert pointer.digest == again["digest"]
    assert Catalog(store).default_description(REQ_A, "linux-64") == again
    assert fresh.write_description(again) is False  # a good copy is never replaced
