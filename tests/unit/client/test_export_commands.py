"""`lock`, `export` and `diff` find one environment per platform, as `show` finds it."""

from __future__ import annotations

import pytest
from test_lookup import F1, F2, F3, R1, MemoryReader

from envd.client.export_commands import environment_of
from envd.errors import AmbiguousIdError


def test_a_req_id_or_an_alias_names_descriptions_per_platform() -> None:
    req_id, alias, descriptions = environment_of(MemoryReader(), R1[:10], [])
    assert (req_id, alias) == (R1, None)
    assert {p: d["full_id"] for p, d in descriptions.items()} == {"linux-64": F1, "osx-arm64": F2}
    req_id, alias, descriptions = environment_of(MemoryReader(), "ml/train:v1", ["osx-arm64"])
    assert (req_id, alias) == (R1, "ml/train:v1")
    assert {p: d["full_id"] for p, d in descriptions.items()} == {"osx-arm64": F3}


def test_a_full_id_of_two_req_ids_is_refused() -> None:
    with pytest.raises(AmbiguousIdError, match=f"`{F3[:8]}` names 2 environments of req_id"):
        environment_of(MemoryReader(), F3[:8], [])
