"""Descriptions at their edges: how a refusal names what is wrong when the value is not what
the schema expects at all, bounded quoting, hints, times that are naive by Python's rule, and
the stored bytes staying readable. Mutation testing (`make mutation`) found these unchecked."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, tzinfo

import pytest
from test_description import WHERE, make_doc, refusal

from envd.description import (
    decode_description,
    encode_description,
    format_timestamp,
    parse_timestamp,
    seal_description,
)
from envd.errors import CorruptDescriptionError, InternalError

PREFIX = f"failed to validate description `{WHERE}`: "


def test_an_object_where_a_string_belongs_is_named_as_the_wrong_type() -> None:
    """Not `packages[0].md5.x is not a known field` nor `….md5.string is missing`: the field
    itself is wrong, whatever keys the object has."""
    for value in ({"x": 1}, {}):
        doc = make_doc()
        doc["packages"][0]["md5"] = value
        assert refusal(doc) == (
            f"{PREFIX}`packages[0].md5` {value!r} is not of type 'string', 'null'"
        )


def test_of_several_unknown_fields_the_first_by_name_is_named() -> None:
    doc = make_doc()
    doc["packages"][0]["zz_extra"] = 1
    doc["packages"][0]["aa_extra"] = 1
    assert refusal(doc) == f"{PREFIX}`packages[0].aa_extra` is not a known field"


def test_a_long_bad_value_is_quoted_up_to_160_characters() -> None:
    """A reason quotes at most 160 characters of what it refuses (the rest as `…`), so a
    refusal stays readable; a value of exactly 160 is quoted whole."""
    pattern = "does not match `^[0-9a-f]{64}$`"
    for length, quoted in ((160, "A" * 160), (161, "A" * 159 + "…"), (300, "A" * 159 + "…")):
        doc = make_doc()
        doc["packages"][0]["sha256"] = "A" * length
        assert refusal(doc) == f"{PREFIX}`packages[0].sha256` `{quoted}` {pattern}"


def test_a_refusal_without_a_place_points_at_the_schema_and_one_read_at_resolving_again() -> None:
    doc = make_doc()
    doc["req_id"] = "XYZ"
    with pytest.raises(CorruptDescriptionError) as building:
        encode_description(doc)
    assert building.value.hint == "descriptions follow `envd/data/description-v1.schema.json`"
    read = json.dumps(doc).encode()
    with pytest.raises(CorruptDescriptionError) as reading:
        decode_description(read, WHERE)
    assert reading.value.hint is not None and "--force" in reading.value.hint


class _NoOffset(tzinfo):
    """A timezone that gives no offset: Python counts such a time as naive."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def test_a_time_whose_timezone_gives_no_offset_is_refused_as_naive() -> None:
    with pytest.raises(InternalError, match="has no timezone"):
        format_timestamp(datetime(2024, 5, 1, tzinfo=_NoOffset()))


def test_a_time_that_is_not_text_parses_to_none() -> None:
    """Pointers and descriptions come from outside: a number or null where a time belongs is
    no time, not a crash."""
    assert parse_timestamp(1714564800) is None  # type: ignore[arg-type]
    assert parse_timestamp(None) is None  # type: ignore[arg-type]


def test_stored_bytes_keep_non_ascii_text_as_utf8() -> None:
    """People read stored descriptions: a name outside ASCII is stored as itself, not as
    `\\u` escapes."""
    doc = make_doc()
    doc["resolved_by"]["user"] = "zoë"
    data = encode_description(seal_description(doc))
    assert "zoë".encode() in data and b"\\u00eb" not in data


def test_the_digest_hashes_non_ascii_text_as_utf8_not_escapes() -> None:
    """docs/ids.md: the canonical JSON is UTF-8, so a reader in any language recomputes the
    digest from the text as written."""
    doc = make_doc()
    doc["resolved_by"]["user"] = "zoë"
    sealed = seal_description(doc)
    content = {k: v for k, v in sealed.items() if k != "digest"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert "zoë" in canonical
    assert sealed["digest"] == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def test_one_description_is_stored_as_the_same_bytes_however_its_dict_was_built() -> None:
    """Two writers of one environment (a re-resolve, a replica, an agent) store identical
    bytes: key order comes from the encoder, not from the dict."""
    doc = make_doc()
    reordered = {key: doc[key] for key in reversed(list(doc))}
    reordered["packages"] = [{k: p[k] for k in reversed(list(p))} for p in doc["packages"]]
    assert list(reordered) != list(doc)
    assert encode_description(reordered) == encode_description(doc)
