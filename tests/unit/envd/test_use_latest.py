"""`--use-latest`: its forms, a bad value's words, and which resolution each mode lets answer."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from test_catalog import REQ_A, SPEC, T0, package

from envd.cache_hits import latest_hit
from envd.catalog import Catalog
from envd.description import PackageFormat, ResolvedBy, SolverInfo, build_description
from envd.errors import ConfigError
from envd.store.local import LocalStore
from envd.use_latest import UseLatest, UseLatestMode, parse_use_latest


def test_forms_parse_and_a_bad_value_lists_the_valid_ones() -> None:
    assert parse_use_latest("") == UseLatest()
    assert parse_use_latest("any").shared
    assert parse_use_latest("mine") == UseLatest(UseLatestMode.MINE)
    assert parse_use_latest("none") == UseLatest(UseLatestMode.NONE)
    users = parse_use_latest("ada, bob@example.com,ada")
    assert users == UseLatest(UseLatestMode.USERS, ("ada", "bob@example.com"))
    assert str(users) == "ada,bob@example.com" and not users.shared
    assert users.resolvers("cy") == {"ada", "bob@example.com"}
    assert parse_use_latest("mine").resolvers("cy") == {"cy"}
    for bad in ["ada,", "ada,,bob", "any,bob", "MINE!", "a b"]:
        with pytest.raises(ConfigError) as info:
            parse_use_latest(bad, "ENVD_USE_LATEST")
        assert info.value.message == f"invalid ENVD_USE_LATEST `{bad}`"
        assert info.value.hint == (
            "valid forms: `any` (the shared default), `mine` (the newest resolved by you), "
            "`none` (always resolve anew), or `USER[,USER…]` (the newest resolved by one of "
            "these users)"
        )


def resolved(catalog: Catalog, version: str, user: str, minutes: int, archives: bool = True) -> str:
    zlib = package(version)
    if archives:
        zlib = replace(zlib, formats=(PackageFormat(".conda", zlib.filename, zlib.sha256, 10),))
    doc: dict[str, Any] = build_description(
        req_id=REQ_A, platform="linux-64", spec=SPEC, packages=[zlib],
        resolved_at=T0 + timedelta(minutes=minutes), resolved_by=ResolvedBy(user, "a", "h"),
        solver=SolverInfo("rattler", "0.28.0"),
    )  # fmt: skip
    catalog.write_description(doc)
    catalog.set_default(REQ_A, "linux-64", doc["full_id"], doc["resolved_at"])
    return str(doc["full_id"])


def test_the_newest_resolution_of_the_listed_users_answers(tmp_path: Path) -> None:
    catalog = Catalog(LocalStore(tmp_path))
    ada_old = resolved(catalog, "1.1", "ada", 0)
    ada_new = resolved(catalog, "1.2", "ada", 10)
    bob = resolved(catalog, "1.3", "bob", 20)
    ada_bare = resolved(catalog, "1.4", "ada", 30, archives=False)  # newest, but no archives

    def answer(users: set[str], no_archives: bool = False) -> str | None:
        hit = latest_hit(catalog, REQ_A, "linux-64", no_archives=no_archives, users=users)
        return None if hit is None else hit.full_id

    assert answer({"ada"}) == ada_new
    assert answer({"ada"}, no_archives=True) == ada_bare
    assert answer({"bob"}) == bob == answer({"ada", "bob"})
    assert answer({"cy"}) is None
    assert ada_old not in {answer({"ada"}), answer({"bob"})}
    assert latest_hit(catalog, REQ_A, "osx-arm64", no_archives=True, users={"ada"}) is None
