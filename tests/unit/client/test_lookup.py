"""Ids as git takes them: whole, `req_id:full_id`, or a unique prefix of 8 or more."""

from __future__ import annotations

from typing import Any

import pytest

from envd.aliases import Alias, parse_alias
from envd.catalog import EnvironmentSummary
from envd.client.lookup import closest_ids, find, target_of
from envd.errors import (
    AliasNotFoundError,
    AmbiguousIdError,
    EnvironmentNotFoundError,
    InvalidSpecError,
    UnknownIdError,
)

R1 = "1111aaaa" + "0" * 32
R2 = "1111aaab" + "0" * 32
F1, F2, F3 = "f1" * 20, "f2" * 20, "e3" * 20
WHEN = "2026-12-04T00:00:00Z"


class MemoryReader:
    """An EnvironmentReader over a fixed list: the protocol's smallest implementation."""

    store_url = "file:///store"

    def __init__(self) -> None:
        self.rows = [
            EnvironmentSummary(R1, "linux-64", F1, WHEN, True),
            EnvironmentSummary(R1, "osx-arm64", F2, WHEN, True),
            EnvironmentSummary(R1, "osx-arm64", F3, "2026-01-01T00:00:00Z", False),
            EnvironmentSummary(R2, "linux-64", F3, WHEN, True),
        ]

    def list_environments(self, req_id: str = "") -> list[EnvironmentSummary]:
        return [r for r in self.rows if not req_id or r.req_id == req_id]

    def scan_environments(self, req_id: str = "") -> tuple[list[EnvironmentSummary], list[str]]:
        return self.list_environments(req_id), []

    def describe(self, summary: EnvironmentSummary) -> dict[str, Any]:
        return {"req_id": summary.req_id, "platform": summary.platform, "full_id": summary.full_id,
                "resolved_at": summary.resolved_at}  # fmt: skip

    def get_alias(self, name: str) -> Alias:
        aliases = {
            "ml/train:v1": Alias(
                parse_alias("ml/train:v1"), R1, {"linux-64": (F1, "d1"), "osx-arm64": (F3, "d3")}
            )
        }
        if name not in aliases:
            raise AliasNotFoundError(f"no alias `{name}`")
        return aliases[name]

    def list_aliases(self, prefix: str = "") -> list[Alias]:
        return [self.get_alias("ml/train:v1")]

    def describe_alias(self, alias: Alias, platform: str) -> tuple[dict[str, Any], bool]:
        full_id = alias.environments[platform][0]
        row = next(r for r in self.rows if (r.platform, r.full_id) == (platform, full_id))
        return self.describe(row), row.is_default


def found(text: str, platforms: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    rows = find(MemoryReader(), text, platforms)
    return [(r.summary.req_id, r.summary.platform, r.summary.full_id) for r in rows]


def test_a_req_id_names_its_defaults() -> None:
    assert found(R1) == [(R1, "linux-64", F1), (R1, "osx-arm64", F2)]
    assert found(R1[:9].upper()) == found(R1)
    assert found(R1[:8] + "0", ("osx-arm64",)) == [(R1, "osx-arm64", F2)]


def test_a_full_id_names_every_environment_with_it() -> None:
    assert found(F3[:8]) == [(R1, "osx-arm64", F3), (R2, "linux-64", F3)]
    assert found(f"{R2[:8]}:{F3[:8]}") == [(R2, "linux-64", F3)]


def test_a_full_id_of_another_platform_is_kept_for_the_caller_to_refuse() -> None:
    assert found(F1[:8], ("osx-arm64",)) == [(R1, "linux-64", F1)]
    with pytest.raises(EnvironmentNotFoundError, match="no environment `1111aaaa` on `win-64`"):
        found("1111aaaa", ("win-64",))


def test_ambiguous() -> None:
    reader = MemoryReader()
    reader.rows.append(EnvironmentSummary("1111aaaa" + "1" * 32, "linux-64", F1, WHEN, True))
    with pytest.raises(AmbiguousIdError) as info:
        find(reader, "1111aaaa")
    assert info.value.message == (
        "`1111aaaa` is ambiguous: 2 ids start with `1111aaaa`: "
        f"`{R1}` (req_id), `{'1111aaaa' + '1' * 32}` (req_id)"
    )
    assert info.value.exit_code == 2


def test_unknown_ids_name_the_closest() -> None:
    with pytest.raises(UnknownIdError) as info:
        found("1111aaac")
    assert info.value.message == "no environment with id `1111aaac`"
    assert info.value.hint == "closest: `1111aaaa0000` (req_id), `1111aaab0000` (req_id)"
    assert info.value.exit_code == 2
    with pytest.raises(UnknownIdError, match="no environment with id `99999999`") as far:
        found("99999999")
    assert far.value.hint == "`envd-client list` shows what the store `file:///store` holds"


def test_malformed_and_missing_platforms() -> None:
    for text in ("1111aaa", "not-an-id", "g" * 40, "a" * 41, f"{R1}:"):
        with pytest.raises(InvalidSpecError, match="is not an environment id"):
            found(text)
    with pytest.raises(EnvironmentNotFoundError, match="no environment `1111aaab` on `win-64`"):
        found("1111aaab", ("win-64",))


def test_closest_ids() -> None:
    ids = {R1, R2, F1}
    assert closest_ids("1111aaab", ids) == [R2, R1]
    assert closest_ids("zzzzzzzz", ids) == []


def test_an_alias_names_what_it_points_at_wherever_an_id_is_taken() -> None:
    assert found("ml/train:v1") == [(R1, "linux-64", F1), (R1, "osx-arm64", F3)]
    rows = find(MemoryReader(), "ml/train:v1", ("osx-arm64",))
    assert [(r.summary.full_id, r.summary.is_default) for r in rows] == [(F3, False)]
    with pytest.raises(EnvironmentNotFoundError) as info:
        found("ml/train:v1", ("win-64",))
    assert info.value.message == "alias `ml/train:v1` names no environment on `win-64`"
    assert info.value.hint == "it names: `linux-64`, `osx-arm64`"
    with pytest.raises(AliasNotFoundError, match="no alias `ml/train`"):
        found("ml/train")


def test_what_an_alias_is_set_to_belongs_to_one_req_id() -> None:
    reader = MemoryReader()
    assert target_of(reader, R1[:8], ()) == (R1, {"linux-64": F1, "osx-arm64": F2})
    assert target_of(reader, "ml/train:v1", ("linux-64",)) == (R1, {"linux-64": F1})
    with pytest.raises(AmbiguousIdError, match=f"`{F3[:8]}` names 2 environments of req_id"):
        target_of(reader, F3[:8], ())
