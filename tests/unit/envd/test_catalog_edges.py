"""The catalog at its edges: deleting environments, ties between defaults, formats gained by one
package of several, the memory cache's bound, writers racing on one description, and objects
in the store that envd did not write. Mutation testing (`make mutation`) found these unchecked.

Races are caused, not mocked: `RacingStore` is a real LocalStore that lets another writer act
(through a second Catalog on the same folder) just before one of its calls."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from test_catalog import REQ_A, REQ_B, T0, description, package, stored, truncate, with_formats

from envd.catalog import Catalog
from envd.description import seal_description
from envd.errors import CorruptDescriptionError, EnvironmentNotFoundError
from envd.store.layout import default_key, description_key
from envd.store.local import LocalStore


class RacingStore(LocalStore):
    """Runs `before[name]` once, just before the first call of that method."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.before: dict[str, Callable[[], object]] = {}

    def _race(self, name: str) -> None:
        hook = self.before.pop(name, None)
        if hook is not None:
            hook()

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        self._race("get_versioned")
        return super().get_versioned(key)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self._race("put_if_absent")
        return super().put_if_absent(key, data)

    def compare_and_swap(self, key: str, expected_version: str | None, data: bytes) -> str:
        self._race("compare_and_swap")
        return super().compare_and_swap(key, expected_version, data)


@pytest.fixture
def store(tmp_path: Path) -> RacingStore:
    return RacingStore(tmp_path)


@pytest.fixture
def catalog(store: RacingStore) -> Catalog:
    return Catalog(store)


# deleting


def test_deleting_the_default_environment_removes_its_pointer_first(
    catalog: Catalog, store: RacingStore
) -> None:
    doc = stored(catalog, description("1.2"))
    catalog.set_default(REQ_A, "linux-64", doc["full_id"], doc["resolved_at"])
    assert catalog.delete_environment(REQ_A, "linux-64", doc["full_id"]) is True
    assert catalog.get_default(REQ_A, "linux-64") is None
    assert store.get(default_key(REQ_A, "linux-64")) is None
    with pytest.raises(EnvironmentNotFoundError):
        catalog.read_description(REQ_A, "linux-64", doc["full_id"])


def test_deleting_another_environment_leaves_the_default_where_it_is(
    catalog: Catalog, store: RacingStore
) -> None:
    kept = stored(catalog, description("1.3", at=T0 + timedelta(hours=1)))
    gone = stored(catalog, description("1.2"))
    catalog.set_default(REQ_A, "linux-64", kept["full_id"], kept["resolved_at"])
    assert catalog.delete_environment(REQ_A, "linux-64", gone["full_id"]) is False
    pointer = catalog.get_default(REQ_A, "linux-64")
    assert pointer is not None and pointer.full_id == kept["full_id"]
    assert [e.full_id for e in catalog.list_environments()] == [kept["full_id"]]
    # without any default: nothing to remove but the description
    other = stored(catalog, description("1.2", req_id=REQ_B))
    assert catalog.delete_environment(REQ_B, "linux-64", other["full_id"]) is False
    assert store.get(description_key(REQ_B, "linux-64", other["full_id"])) is None


def test_deleting_an_environment_the_store_lacks_says_where_it_looked(
    catalog: Catalog, store: RacingStore
) -> None:
    doc = stored(catalog, description("1.2"))
    with pytest.raises(EnvironmentNotFoundError) as info:
        catalog.delete_environment(REQ_B, "linux-64", doc["full_id"])
    assert info.value.message == (
        f"failed to delete environment `{doc['full_id']}` of `{REQ_B}` on `linux-64`: it is "
        f"not in store `{store.url}`"
    )
    assert catalog.read_description(REQ_A, "linux-64", doc["full_id"]) == doc


# defaults


def test_of_two_defaults_resolved_at_the_same_instant_the_later_call_wins(
    catalog: Catalog,
) -> None:
    first = stored(catalog, description("1.2"))
    second = stored(catalog, description("1.3"))
    assert first["resolved_at"] == second["resolved_at"]
    catalog.set_default(REQ_A, "linux-64", first["full_id"], first["resolved_at"])
    pointer = catalog.set_default(REQ_A, "linux-64", second["full_id"], second["resolved_at"])
    assert pointer.full_id == second["full_id"]
    assert catalog.default_description(REQ_A, "linux-64") == second


def test_a_default_that_loses_the_race_to_a_newer_one_returns_the_newer(
    catalog: Catalog, store: RacingStore
) -> None:
    older = stored(catalog, description("1.2"))
    newer = stored(catalog, description("1.3", at=T0 + timedelta(hours=1)))
    # another coordinator points at the newer one between this one's read and its swap
    store.before["compare_and_swap"] = lambda: Catalog(store).set_default(
        REQ_A, "linux-64", newer["full_id"], newer["resolved_at"]
    )
    pointer = catalog.set_default(REQ_A, "linux-64", older["full_id"], older["resolved_at"])
    assert pointer.full_id == newer["full_id"]
    assert catalog.default_description(REQ_A, "linux-64") == newer


def test_a_newer_pointer_without_a_digest_to_another_environment_is_replaced(
    catalog: Catalog, store: RacingStore
) -> None:
    older = stored(catalog, description("1.2"))
    newer = stored(catalog, description("1.3", at=T0 + timedelta(days=1)))
    legacy = {"schema": "envd-default-v1", "req_id": REQ_A, "platform": "linux-64",
              "full_id": newer["full_id"], "resolved_at": newer["resolved_at"]}  # fmt: skip
    store.put_if_absent(default_key(REQ_A, "linux-64"), json.dumps(legacy).encode())
    pointer = catalog.set_default(REQ_A, "linux-64", older["full_id"], older["resolved_at"])
    assert (pointer.full_id, pointer.digest) == (older["full_id"], older["digest"])


# formats


def test_one_package_gaining_formats_upgrades_a_description_whose_other_packages_kept_theirs(
    catalog: Catalog,
) -> None:
    xz = replace(package("5.4"), name="xz", filename="xz-5.4-h0_0.conda")
    bare = description("1.2", packages=(package("1.2"), xz))
    both = with_formats(bare)
    half: dict[str, Any] = json.loads(json.dumps(both))
    half["packages"][1]["formats"] = []
    half = seal_description(half)
    assert catalog.write_description(half) is True
    assert catalog.write_description(both) is True  # xz gained `.conda`, zlib kept it
    assert catalog.read_description(REQ_A, "linux-64", bare["full_id"]) == both


# the memory cache


def test_memory_keeps_the_most_recently_read_descriptions_up_to_its_size(
    store: RacingStore,
) -> None:
    """A description with its archives is served from memory while it is among the
    `cache_size` most recently read; the least recently read one leaves first."""
    writer = Catalog(store)
    docs = [stored(writer, with_formats(description(v))) for v in ("1.1", "1.2", "1.3")]
    reader = Catalog(store, cache_size=2)
    for doc in docs:
        reader.read_description(REQ_A, "linux-64", doc["full_id"])
    for doc in docs:  # gone from the store: only memory can answer now
        store.delete(description_key(REQ_A, "linux-64", doc["full_id"]))
    with pytest.raises(EnvironmentNotFoundError):
        reader.read_description(REQ_A, "linux-64", docs[0]["full_id"])
    for doc in docs[1:]:
        assert reader.read_description(REQ_A, "linux-64", doc["full_id"]) == doc


# racing writers


def test_a_description_deleted_while_it_is_written_is_written_again(
    catalog: Catalog, store: RacingStore
) -> None:
    bare = stored(catalog, description("1.2"))
    key = description_key(REQ_A, "linux-64", bare["full_id"])
    store.before["get_versioned"] = lambda: store.delete(key)
    cached = with_formats(bare)
    assert catalog.write_description(cached) is True
    assert Catalog(store).read_description(REQ_A, "linux-64", bare["full_id"]) == cached


def test_a_description_deleted_and_written_again_by_others_during_an_upgrade_is_upgraded(
    catalog: Catalog, store: RacingStore
) -> None:
    bare = stored(catalog, description("1.2"))
    key = description_key(REQ_A, "linux-64", bare["full_id"])

    def delete_then_rewrite() -> None:
        store.delete(key)  # `envd-client delete` … then a resolve writes it anew
        store.before["put_if_absent"] = lambda: Catalog(store).write_description(bare)

    store.before["put_if_absent"] = lambda: None  # this writer's first, create-only attempt
    store.before["get_versioned"] = delete_then_rewrite
    cached = with_formats(bare)
    assert catalog.write_description(cached) is True
    assert Catalog(store).read_description(REQ_A, "linux-64", bare["full_id"]) == cached


def test_an_upgrade_that_loses_the_race_to_the_same_upgrade_settles_without_error(
    catalog: Catalog, store: RacingStore
) -> None:
    bare = stored(catalog, description("1.2"))
    cached = with_formats(bare)
    # another coordinator caches the same archives between this one's read and its swap
    store.before["compare_and_swap"] = lambda: Catalog(store).write_description(cached)
    assert catalog.write_description(cached) is False  # already there: nothing to add
    assert Catalog(store).read_description(REQ_A, "linux-64", bare["full_id"]) == cached


# what envd did not write, and what it cannot read


def test_an_object_envd_did_not_write_among_the_environments_is_passed_over(
    catalog: Catalog, store: RacingStore
) -> None:
    doc = stored(catalog, description("1.2"))
    store.put_if_absent("envs/README.md", b"notes by an operator\n")
    assert [e.full_id for e in catalog.list_environments()] == [doc["full_id"]]
    assert catalog.scan_environments().unreadable == ()


def test_when_every_copy_of_a_full_id_is_unreadable_the_first_ones_error_is_raised(
    catalog: Catalog, store: RacingStore
) -> None:
    one = stored(catalog, description("1.2", req_id=REQ_A))
    two = stored(catalog, description("1.2", req_id=REQ_B))
    truncate(store, description_key(REQ_A, "linux-64", one["full_id"]))
    store.delete(description_key(REQ_B, "linux-64", two["full_id"]))
    store.put_if_absent(description_key(REQ_B, "linux-64", two["full_id"]), b"[]")
    with pytest.raises(CorruptDescriptionError) as info:
        Catalog(store).find_by_full_id(one["full_id"])
    assert f"`{description_key(REQ_A, 'linux-64', one['full_id'])}`: invalid JSON" in (
        info.value.message
    )
