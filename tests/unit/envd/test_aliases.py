"""Aliases over a real LocalStore: names, moves by compare-and-swap, write-once version tags,
history, deletion that keeps the history, and reads verified by the digest each one carries."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from test_catalog import REQ_A, REQ_B, T0, description

from envd.alias_book import AliasBook
from envd.aliases import AliasName, AliasTarget, parse_alias
from envd.catalog import Catalog
from envd.errors import (
    AliasConflictError,
    AliasNotFoundError,
    CorruptObjectError,
    EnvironmentNotFoundError,
    InvalidAliasError,
)
from envd.store.local import LocalStore

V1 = parse_alias("ml_team/train_env:v1")
LATEST = parse_alias("ml_team/train_env")


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path)


@pytest.fixture
def book(store: LocalStore) -> AliasBook:
    return AliasBook(store, Catalog(store))


def stored(store: LocalStore, version: str, **kwargs: Any) -> dict[str, Any]:
    doc = description(version, **kwargs)
    Catalog(store).write_description(doc)
    return doc


def target(*docs: dict[str, Any]) -> AliasTarget:
    return AliasTarget(docs[0]["req_id"], {d["platform"]: d["full_id"] for d in docs})


def moves(book: AliasBook, name: AliasName) -> list[tuple[str, str, str | None, str | None]]:
    """(who, action, from req_id, to req_id) of every move, oldest first."""
    record = book.get(name)
    return [
        (
            m.who,
            m.action,
            m.before.req_id if m.before else None,
            m.after.req_id if m.after else None,
        )
        for m in record.history
    ]


def test_names_parse_with_a_default_tag_and_version_tags_are_write_once() -> None:
    assert parse_alias("ml_team/train_env:v1") == AliasName("ml_team", "train_env", "v1")
    assert parse_alias("ml_team/vision/detector") == AliasName("ml_team", "vision/detector")
    assert str(parse_alias("ml_team/train_env")) == "ml_team/train_env:latest"
    assert parse_alias("a/b:v2").key == "aliases/a/b/v2.json"
    once = ["v1", "1.2", "2024-06-01", "v10.3-rc1"]
    moving = ["latest", "candidate", "stable", "dev", "version"]
    assert [parse_alias(f"a/b:{t}").write_once for t in once] == [True] * len(once)
    assert [parse_alias(f"a/b:{t}").write_once for t in moving] == [False] * len(moving)
    for bad in ["train_env", "ML/x", "a/b:", "a/b c", "/b", "a//b", "a/.b", "a/b:v1:v2"]:
        with pytest.raises(InvalidAliasError, match=r"is not an alias"):
            parse_alias(bad)


def test_set_then_get_carries_the_digest_and_a_history(book: AliasBook, store: LocalStore) -> None:
    linux = stored(store, "1.2")
    mac = stored(store, "1.2", platform="osx-arm64")
    alias = book.set(V1, target(linux, mac), who="ada", when="2024-05-01T12:00:00Z")
    assert alias == book.get(V1)
    assert alias.environments == {
        "linux-64": (linux["full_id"], linux["digest"]),
        "osx-arm64": (mac["full_id"], mac["digest"]),
    }
    assert alias.to_json() == {
        "alias": "ml_team/train_env:v1",
        "req_id": REQ_A,
        "full_ids": {"linux-64": linux["full_id"], "osx-arm64": mac["full_id"]},
        "history": [{
            "when": "2024-05-01T12:00:00Z", "who": "ada", "action": "set", "from": None,
            "to": {"req_id": REQ_A,
                   "full_ids": {"linux-64": linux["full_id"], "osx-arm64": mac["full_id"]}},
        }],
    }  # fmt: skip
    assert book.describe(alias, "osx-arm64") == mac
    with pytest.raises(EnvironmentNotFoundError, match="has no environment on `win-64`"):
        book.describe(alias, "win-64")


def test_a_write_once_tag_refuses_another_target_but_may_gain_platforms(
    book: AliasBook, store: LocalStore
) -> None:
    linux, other = stored(store, "1.2"), stored(store, "1.3")
    book.set(V1, target(linux), who="ada", when="t1")
    assert book.set(V1, target(linux), who="bob", when="t2") == book.get(V1)  # same: no move
    with pytest.raises(AliasConflictError) as info:
        book.set(V1, target(other), who="bob", when="t3")
    assert info.value.message == (
        f"failed to point alias `ml_team/train_env:v1` at req_id `{REQ_A}` (`{other['full_id']}` "
        f"on `linux-64`): its tag `v1` looks like a version, so it is write-once, and it points "
        f"at req_id `{REQ_A}` (`{linux['full_id']}` on `linux-64`)"
    )
    with pytest.raises(AliasConflictError, match="write-once"):
        book.set(V1, target(stored(store, "1.2", req_id=REQ_B)), who="bob", when="t3")
    mac = stored(store, "1.4", platform="osx-arm64")
    grown = book.set(V1, target(mac), who="bob", when="t4")
    assert grown.target == target(linux, mac)
    assert moves(book, V1) == [("ada", "set", None, REQ_A), ("bob", "set", REQ_A, REQ_A)]


def test_a_moving_tag_moves_platforms_of_its_req_id_and_is_replaced_by_another(
    book: AliasBook, store: LocalStore
) -> None:
    linux, mac = stored(store, "1.2"), stored(store, "1.2", platform="osx-arm64")
    book.set(LATEST, target(linux, mac), who="ada", when="t1")
    newer = stored(store, "1.3")
    assert book.set(LATEST, target(newer), who="bob", when="t2").target == target(newer, mac)
    elsewhere = stored(store, "1.2", req_id=REQ_B)
    assert book.set(LATEST, target(elsewhere), who="cy", when="t3").target == target(elsewhere)
    assert moves(book, LATEST) == [
        ("ada", "set", None, REQ_A), ("bob", "set", REQ_A, REQ_A), ("cy", "set", REQ_A, REQ_B),
    ]  # fmt: skip
    history = book.get(LATEST).history
    assert [m.when for m in history] == ["t1", "t2", "t3"]
    assert all(a.after == b.before for a, b in itertools.pairwise(history))


def test_a_writer_that_loses_the_swap_gets_a_conflict_naming_the_winner(
    book: AliasBook, store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, third = stored(store, "1.2"), stored(store, "1.3"), stored(store, "1.4")
    book.set(LATEST, target(first), who="ada", when="t1")
    rival = AliasBook(store, Catalog(store))
    swap = store.compare_and_swap

    def raced(key: str, expected: str | None, data: bytes) -> str:
        monkeypatch.setattr(store, "compare_and_swap", swap)
        rival.set(LATEST, target(second), who="bob", when="t2")  # lands between read and swap
        return swap(key, expected, data)

    monkeypatch.setattr(store, "compare_and_swap", raced)
    with pytest.raises(AliasConflictError) as info:
        book.set(LATEST, target(third), who="cy", when="t3")
    assert info.value.message == (
        f"failed to point alias `ml_team/train_env:latest` at req_id `{REQ_A}` "
        f"(`{third['full_id']}` on `linux-64`): another writer moved it first; it now points at "
        f"req_id `{REQ_A}` (`{second['full_id']}` on `linux-64`)"
    )
    assert moves(book, LATEST) == [("ada", "set", None, REQ_A), ("bob", "set", REQ_A, REQ_A)]


def test_delete_keeps_the_history_and_spends_a_version_tag(
    book: AliasBook, store: LocalStore
) -> None:
    linux = stored(store, "1.2")
    book.set(V1, target(linux), who="ada", when="t1")
    book.set(LATEST, target(linux), who="ada", when="t1")
    book.delete(V1, who="bob", when="t2")
    with pytest.raises(
        AliasNotFoundError, match=r"no alias `ml_team/train_env:v1`: deleted on t2 by `bob`"
    ):
        book.get(V1)
    with pytest.raises(AliasConflictError, match="set before and then deleted"):
        book.set(V1, target(linux), who="ada", when="t3")
    book.delete(LATEST, who="bob", when="t2")
    again = book.set(LATEST, target(linux), who="ada", when="t3")
    assert [m.action for m in again.history] == ["set", "delete", "set"]
    with pytest.raises(AliasNotFoundError, match="no alias `ml_team/other:latest`"):
        book.delete(parse_alias("ml_team/other"), who="bob", when="t4")


def test_list_by_prefix_skips_deleted_and_reports_unreadable(
    book: AliasBook, store: LocalStore
) -> None:
    linux = stored(store, "1.2")
    names = ["ml_team/a", "ml_team/b/c:v1", "mlops/x", "vision/y"]
    for name in names:
        book.set(parse_alias(name), target(linux), who="ada", when="t1")
    book.delete(parse_alias("vision/y"), who="ada", when="t2")
    store.put_if_absent("aliases/ml_team/broken/latest.json", b"{not json")

    def listed(prefix: str) -> list[str]:
        return [str(a.name) for a in book.list_aliases(prefix).aliases]

    assert listed("") == ["ml_team/a:latest", "ml_team/b/c:v1", "mlops/x:latest"]
    assert listed("ml") == ["ml_team/a:latest", "ml_team/b/c:v1", "mlops/x:latest"]
    assert listed("ml_team/") == ["ml_team/a:latest", "ml_team/b/c:v1"]
    assert listed("ml_team/b/c:") == ["ml_team/b/c:v1"]
    assert [u.key for u in book.list_aliases("ml_team/").unreadable] == [
        "aliases/ml_team/broken/latest.json"
    ]


def test_reads_through_an_alias_are_verified_by_its_digest(
    book: AliasBook, store: LocalStore
) -> None:
    linux = stored(store, "1.2")
    alias = book.set(LATEST, target(linux), who="ada", when="t1")
    key = f"envs/{REQ_A}/linux-64/{linux['full_id']}.json"
    # a version of the same environment sealed anew (as one gaining formats is) is not the one
    # the alias was set to: refused, naming both digests
    later = replace_resolved_at(linux, minutes=5)
    store.compare_and_swap(key, store.get_versioned(key)[1], json.dumps(later).encode())  # type: ignore[index]
    fresh = AliasBook(store, Catalog(store))
    with pytest.raises(CorruptObjectError) as info:
        fresh.describe(alias, "linux-64")
    assert info.value.message == (
        f"failed to verify environment `{linux['full_id']}` on `linux-64` of alias "
        f"`ml_team/train_env:latest`: its description's digest is `{later['digest']}`, the "
        f"alias says `{linux['digest']}`"
    )
    store.compare_and_swap(alias.name.key, store.get_versioned(alias.name.key)[1], b"[]")  # type: ignore[index]
    with pytest.raises(CorruptObjectError, match="failed to read alias `ml_team/train_env:latest`"):
        fresh.get(LATEST)


def replace_resolved_at(doc: dict[str, Any], minutes: int) -> dict[str, Any]:
    from envd.description import seal_description

    changed = {k: v for k, v in doc.items() if k != "digest"}
    changed["resolved_at"] = (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return seal_description(changed)


def test_forced_deletion_takes_the_environment_out_of_an_alias(
    book: AliasBook, store: LocalStore
) -> None:
    linux, mac = stored(store, "1.2"), stored(store, "1.2", platform="osx-arm64")
    book.set(LATEST, target(linux, mac), who="ada", when="t1")
    assert [str(a.name) for a in book.pointing_at(REQ_A, "linux-64", linux["full_id"])] == [
        "ml_team/train_env:latest"
    ]
    left = book.drop_environment(LATEST, "linux-64", linux["full_id"], who="bob", when="t2")
    assert left is not None and left.target == target(mac)
    assert book.drop_environment(LATEST, "linux-64", linux["full_id"], who="bob", when="t3") is None
    book.drop_environment(LATEST, "osx-arm64", mac["full_id"], who="bob", when="t4")
    with pytest.raises(AliasNotFoundError, match="its last environment was deleted on t4"):
        book.get(LATEST)
    assert moves_of_record(store, LATEST) == ["set", "environment-deleted", "environment-deleted"]


def moves_of_record(store: LocalStore, name: AliasName) -> list[str]:
    data = store.get(name.key)
    assert data is not None
    return [m["action"] for m in json.loads(data)["history"]]


def test_setting_needs_the_environment_in_the_store(book: AliasBook) -> None:
    with pytest.raises(EnvironmentNotFoundError, match=f"failed to find environment `{REQ_B}`"):
        book.set(LATEST, AliasTarget(REQ_A, {"linux-64": REQ_B}), who="ada", when="t1")
    with pytest.raises(InvalidAliasError, match="no environment given"):
        book.set(LATEST, AliasTarget(REQ_A, {}), who="ada", when="t1")
