"""The pre-deploy hook's logic without a coordinator: one request per distinct environment,
a step whose spec won't load failing alone, and an alias confirmed (or not) against a real
store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from stored_env import archived_package, store_environment

from envd.alias_book import AliasBook
from envd.aliases import Alias, AliasTarget, parse_alias
from envd.catalog import Catalog
from envd.client.deploy_hook import assemble, confirm_alias, group_environments
from envd.client.deploy_result import PlatformResult
from envd.client.manifest import parse_manifest
from envd.client.readers import StoreReader
from envd.errors import CorruptDescriptionError, CorruptObjectError
from envd.ids import req_id
from envd.store.local import LocalStore
from harness import ROOT

PACKAGE = ROOT / "tests" / "fixtures" / "packages" / "conda-test-recipes" / "dependency-2.0-0.conda"


def spec_step(name: str, platforms: list[str], packages: list[str]) -> dict[str, Any]:
    environment = {"channels": ["conda-forge"], "packages": packages}
    return {"name": name, "platforms": platforms, "environment": environment}


def test_identical_environments_across_steps_are_one_request(tmp_path: Path) -> None:
    (tmp_path / "env.yml").write_text(
        "channels: [conda-forge]\ndependencies: [pkg-that-is-absent]\n"
    )
    manifest = parse_manifest({"version": 1, "steps": [
        spec_step("a", ["linux-64"], ["numpy", "python=3.11"]),
        spec_step("b", ["osx-arm64", "linux-64"], ["python=3.11", "numpy"]),  # same spec
        spec_step("c", ["linux-64"], ["numpy"]),
        {"name": "d", "platforms": ["linux-64"], "environment": {"alias": "team/env:v1"}},
        {"name": "e", "platforms": ["osx-64"], "environment": {"alias": "team/env:v1"}},
        {"name": "f", "platforms": ["linux-64"], "environment": {"files": ["env.yml"],
                                                                  "python": "3.9"}},
    ]}, base=tmp_path)  # fmt: skip
    environments, errors, keys = group_environments(manifest, lambda _: None)
    assert errors == {}
    assert [(e.steps, e.platforms, e.alias) for e in environments] == [
        (["a", "b"], ["linux-64", "osx-arm64"], None),
        (["c"], ["linux-64"], None),
        (["d", "e"], ["linux-64", "osx-64"], "team/env:v1"),
        (["f"], ["linux-64"], None),
    ]
    first = environments[0]
    assert first.spec is not None and first.key == req_id(first.spec)
    assert keys == {"a": first.key, "b": first.key, "c": environments[1].key,
                    "d": "team/env:v1", "e": "team/env:v1", "f": environments[3].key}  # fmt: skip


def test_a_spec_that_does_not_load_fails_its_step_alone(tmp_path: Path) -> None:
    manifest = parse_manifest({"version": 1, "steps": [
        spec_step("good", ["linux-64"], ["numpy"]),
        spec_step("bad", ["linux-64"], ["numpy >=>= 1"]),
        {"name": "nochannel", "platforms": ["linux-64"], "environment": {"packages": ["numpy"]}},
    ]}, base=tmp_path)  # fmt: skip
    environments, errors, keys = group_environments(manifest, lambda _: None)
    assert [e.steps for e in environments] == [["good"]]
    assert sorted(errors) == ["bad", "nochannel"]
    assert errors["bad"].reference == "E100" and "numpy >=>= 1" in errors["bad"].message
    assert errors["nochannel"].message == (
        "the spec has conda dependencies but names no channel to resolve them from"
    )
    outcomes = {keys["good"]: {"linux-64": PlatformResult("linux-64", keys["good"], "f" * 40,
                                                          "resolved", "")}}  # fmt: skip
    result = assemble(manifest, errors, keys, outcomes, "/srv/store")
    assert [s.name for s in result.failed_steps] == ["bad", "nochannel"]
    good = result.steps[0].platforms[0]
    assert good.store_url == f"file:///srv/store/envs/{keys['good']}/linux-64/{'f' * 40}.json"
    assert result.exit_code == 2


def test_find_links_are_part_of_a_steps_spec_as_with_resolve(tmp_path: Path) -> None:
    """`environment.find_links` gives the spec what `resolve --find-links` gives it (the same
    req_id); a local folder is refused for that step alone, naming the option."""
    from envd.spec_input import load_spec

    page = "https://wheels.example/simple/"
    pypi = {"pypi": ["crcmod==1.7"]}
    manifest = parse_manifest({"version": 1, "steps": [
        {"name": "plain", "platforms": ["linux-64"], "environment": pypi},
        {"name": "linked", "platforms": ["linux-64"],
         "environment": {**pypi, "find_links": [page]}},
        {"name": "folder", "platforms": ["linux-64"],
         "environment": {**pypi, "find_links": ["./wheels"]}},
    ]}, base=tmp_path)  # fmt: skip
    environments, errors, keys = group_environments(manifest, lambda _: None)
    expected = req_id(load_spec(pypi=["crcmod==1.7"], find_links=[page]).spec)
    assert keys["linked"] == expected != keys["plain"]
    assert [e.steps for e in environments] == [["plain"], ["linked"]]
    assert list(errors) == ["folder"]
    assert "`--find-links ./wheels`" in errors["folder"].message


@pytest.fixture
def aliased(tmp_path: Path) -> tuple[LocalStore, dict[str, Any]]:
    store = LocalStore(tmp_path / "store")
    doc = store_environment(store, [archived_package(PACKAGE)], [PACKAGE], "linux-64")
    target = AliasTarget(str(doc["req_id"]), {"linux-64": str(doc["full_id"])})
    AliasBook(store, Catalog(store)).set(parse_alias("team/env:v1"), target, who="t",
                                         when="2026-01-01T00:00:00Z")  # fmt: skip
    return store, doc


def test_an_alias_is_confirmed_where_it_names_an_environment(
    aliased: tuple[LocalStore, dict[str, Any]],
) -> None:
    store, doc = aliased
    got = confirm_alias(StoreReader(store.url), "team/env:v1", ["linux-64", "osx-arm64"])
    assert got["linux-64"] == PlatformResult("linux-64", str(doc["req_id"]), str(doc["full_id"]),
                                             "confirmed", "")  # fmt: skip
    missing = got["osx-arm64"]
    assert (missing.outcome, missing.full_id, missing.error is not None) == ("failed", "", True)
    assert missing.error is not None and missing.error.reference == "E302"
    assert missing.error.message == "alias `team/env:v1` names no environment on `osx-arm64`"


def test_an_alias_whose_description_changed_does_not_verify(
    aliased: tuple[LocalStore, dict[str, Any]],
) -> None:
    store, doc = aliased
    key = f"envs/{doc['req_id']}/linux-64/{doc['full_id']}.json"
    path = store.root / key
    changed = json.loads(path.read_text())
    changed["resolved_by"]["user"] = "mallory"  # the seal no longer holds
    path.write_text(json.dumps(changed))
    got = confirm_alias(StoreReader(store.url), "team/env:v1", ["linux-64"])["linux-64"]
    assert got.outcome == "failed" and isinstance(got.error, CorruptDescriptionError)
    assert got.error.message.startswith(f"failed to validate description `{key}`: `digest` is ")


class SwappingReader(StoreReader):
    """A coordinator answering with another valid description than the alias names: a
    hostile or broken coordinator, which no real store can be made to be."""

    def __init__(self, store_url: str, swapped: dict[str, Any]) -> None:
        super().__init__(store_url)
        self.swapped = swapped

    def describe_alias(self, alias: Alias, platform: str) -> tuple[dict[str, Any], bool]:
        return self.swapped, True


def test_a_description_that_is_not_the_aliases_is_refused(
    aliased: tuple[LocalStore, dict[str, Any]],
) -> None:
    store, _ = aliased
    other = store_environment(store, [archived_package(PACKAGE)], [PACKAGE], "osx-64")
    reader = SwappingReader(store.url, other)
    got = confirm_alias(reader, "team/env:v1", ["linux-64"])["linux-64"]
    assert (got.outcome, got.full_id) == ("failed", "")
    assert isinstance(got.error, CorruptObjectError)
    assert got.error.message == (
        "failed to verify alias `team/env:v1` on `linux-64`: the description's `platform` is "
        "`osx-64`, the alias says `linux-64`"
    )
