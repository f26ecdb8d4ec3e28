"""The client's memo of verified description bytes: the same bytes skip the checks, changed
bytes get all of them again."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_catalog import REQ_A, description

from envd.catalog import Catalog
from envd.errors import CorruptDescriptionError
from envd.store.layout import description_key
from envd.store.local import LocalStore
from envd.verified_memo import VerifiedMemo


def test_same_bytes_skip_the_checks_changed_bytes_do_not(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    doc = description("1.2")
    Catalog(store).write_description(doc)
    key = description_key(REQ_A, "linux-64", doc["full_id"])
    memo = VerifiedMemo(tmp_path / "memo")

    first = Catalog(store)
    first.memo = memo
    assert first.read_description(REQ_A, "linux-64", doc["full_id"]) == doc
    data = store.get(key)
    assert data is not None and memo.knows(memo.key(data))

    tampered = data.replace(b'"1.2"', b'"6.6"', 1)  # the version: full_id no longer matches
    (tmp_path / "store" / key).write_bytes(tampered)
    later = Catalog(store)
    later.memo = memo
    with pytest.raises(CorruptDescriptionError):
        later.read_description(REQ_A, "linux-64", doc["full_id"])
    assert not memo.knows(memo.key(tampered))


def test_a_memo_that_cannot_be_written_costs_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    memo = VerifiedMemo(blocker)
    memo.remember("ab" * 32)  # no error
    assert not memo.knows("ab" * 32)
