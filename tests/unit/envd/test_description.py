"""Descriptions: built, encoded and decoded round trip; anything corrupt is refused by field."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from envd.description import (
    BuildOrigin,
    PackageFormat,
    ResolvedBy,
    ResolvedPackage,
    SolverInfo,
    build_description,
    decode_description,
    description_digest,
    encode_description,
    format_timestamp,
    packages_of,
    parse_timestamp,
    seal_description,
    validate_description,
)
from envd.errors import CorruptDescriptionError, InternalError
from envd.ids import full_id
from envd.spec import CondaDependency, PypiDependency, Spec

REQ_ID = "0123456789abcdef0123456789abcdef01234567"
WHEN = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
WHERE = "envs/x/linux-64/y.json"
SPEC = Spec(
    conda=(CondaDependency(name="python", spec="python >=3.11"),),
    pypi=(PypiDependency(name="requests", requirement="requests>=2"),),
    python=">=3.11",
    channels=("https://conda.anaconda.org/conda-forge",),
)


def conda_package(name: str, sha: str, **extra: Any) -> ResolvedPackage:
    fields: dict[str, Any] = {
        "kind": "conda",
        "name": name,
        "version": "1.0",
        "build": "h123_0",
        "channel": "https://conda.anaconda.org/conda-forge",
        "url": f"https://conda.anaconda.org/conda-forge/linux-64/{name}-1.0-h123_0.conda",
        "filename": f"{name}-1.0-h123_0.conda",
        "sha256": sha * 64,
        "md5": "d" * 32,
        "size": 1234,
        "subdir": "linux-64",
        "depends": ("libc >=2.17",),
        "constrains": (),
    }
    fields.update(extra)
    return ResolvedPackage(**fields)


REQUESTS = ResolvedPackage(
    kind="pypi",
    name="requests",
    version="2.32.3",
    build="",
    channel="https://pypi.org/simple",
    url="https://files.pythonhosted.org/requests-2.32.3-py3-none-any.whl",
    filename="requests-2.32.3-py3-none-any.whl",
    sha256="e" * 64,
    md5=None,
    size=None,
    subdir="noarch",
    depends=("urllib3<3,>=1.21.1",),
    formats=(
        PackageFormat(
            format=".whl", filename="requests-2.32.3-py3-none-any.whl", sha256="e" * 64, size=64
        ),
    ),
    built=BuildOrigin(
        source="https://files.pythonhosted.org/requests-2.32.3.tar.gz",
        sha256="f" * 64,
        agent="agent-1",
        platform="linux-64",
    ),
)
PACKAGES = [
    conda_package("zlib", "a"),
    REQUESTS,
    conda_package("python", "b", md5=None, constrains=("python_abi 3.11.*",)),
]


def make_doc() -> dict[str, Any]:
    return build_description(
        req_id=REQ_ID,
        platform="linux-64",
        spec=SPEC,
        packages=PACKAGES,
        resolved_at=WHEN,
        resolved_by=ResolvedBy(user="ada", agent="agent-1", host="build-01"),
        solver=SolverInfo(name="rattler", version="0.28.0"),
    )


def refusal(doc: Any) -> str:
    with pytest.raises(CorruptDescriptionError) as info:
        decode_description(json.dumps(doc).encode(), WHERE)
    return info.value.message


def test_build_computes_full_id_and_sorts_packages_by_kind_then_name() -> None:
    doc = make_doc()
    assert doc["schema"] == "envd-description-v1"
    assert doc["full_id"] == full_id(p.identity() for p in PACKAGES)
    assert [(p["kind"], p["name"]) for p in doc["packages"]] == [
        ("conda", "python"),
        ("conda", "zlib"),
        ("pypi", "requests"),
    ]
    assert doc["env_type"] == "mixed"
    assert doc["spec"] == SPEC.to_canonical()
    assert doc["resolved_at"] == "2024-05-01T12:00:00Z"


def test_full_id_counts_a_built_wheels_source_not_the_wheel() -> None:
    rebuilt = replace(REQUESTS, sha256="d" * 64)  # the same source built again: other bytes
    assert rebuilt.identity() == REQUESTS.identity()
    assert REQUESTS.identity().sha256 == "f" * 64
    other_source = replace(REQUESTS, built=replace(REQUESTS.built, sha256="c" * 64))  # type: ignore[type-var]
    assert full_id([other_source.identity()]) != full_id([REQUESTS.identity()])
    doc = make_doc()
    assert doc["packages"][2]["built"] == {
        "source": "https://files.pythonhosted.org/requests-2.32.3.tar.gz",
        "sha256": "f" * 64,
        "agent": "agent-1",
        "platform": "linux-64",
    }
    decoded = decode_description(json.dumps(doc).encode(), WHERE)  # full_id recomputes
    assert decoded["full_id"] == doc["full_id"]
    del doc["packages"][2]["built"]["sha256"]
    assert "built.sha256" in refusal(doc)


def test_pypi_packages_name_their_index_and_carry_no_conda_fields() -> None:
    pypi = make_doc()["packages"][2]
    assert pypi["index"] == "https://pypi.org/simple"
    assert "channel" not in pypi and "build" not in pypi


def test_encode_decode_round_trip_is_exact() -> None:
    doc = make_doc()
    data = encode_description(doc)
    assert data.endswith(b"}\n")
    assert data == encode_description(json.loads(data))
    assert decode_description(data, WHERE) == doc
    assert packages_of(decode_description(data, WHERE)) == tuple(
        sorted(PACKAGES, key=lambda p: (p.kind, p.name))
    )


def test_schema_ships_as_package_data_and_is_valid_2020_12() -> None:
    text = resources.files("envd.data").joinpath("description-v1.schema.json").read_text("utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    Draft202012Validator(schema).validate(make_doc())


def _shorten_sha(doc: dict[str, Any]) -> None:
    doc["packages"][1]["sha256"] = "a" * 63


def _drop_url(doc: dict[str, Any]) -> None:
    del doc["packages"][0]["url"]


def _typo(doc: dict[str, Any]) -> None:
    doc["packages"][0]["sah256"] = doc["packages"][0]["sha256"]


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (
            _shorten_sha,
            f"failed to validate description `{WHERE}`: `packages[1].sha256` `{'a' * 63}` "
            "does not match `^[0-9a-f]{64}$`",
        ),
        (_drop_url, f"failed to validate description `{WHERE}`: `packages[0].url` is missing"),
        (
            _typo,
            f"failed to validate description `{WHERE}`: `packages[0].sah256` is not a known field",
        ),
        (
            lambda d: d.pop("solver"),
            f"failed to validate description `{WHERE}`: `solver` is missing",
        ),
        (
            lambda d: d["packages"][2].update(channel="conda-forge"),
            f"failed to validate description `{WHERE}`: `packages[2].channel` is not allowed for "
            "this package `kind`",
        ),
        (
            lambda d: d["packages"][0].pop("build"),
            f"failed to validate description `{WHERE}`: `packages[0].build` is missing",
        ),
        (
            lambda d: d.update(resolved_at="2024-13-01T00:00:00Z"),
            f"failed to validate description `{WHERE}`: `resolved_at` `2024-13-01T00:00:00Z` is "
            "not a valid time",
        ),
        (
            lambda d: d["packages"][0]["formats"].append({"format": ".conda"}),
            f"failed to validate description `{WHERE}`: `packages[0].formats[0].filename` is "
            "missing",
        ),
        (
            lambda d: d["packages"][1].update(size=-1),
            f"failed to validate description `{WHERE}`: `packages[1].size` -1 is less than the "
            "minimum of 0",
        ),
    ],
)
def test_a_corrupt_description_is_refused_naming_the_field(corrupt: Any, message: str) -> None:
    doc = copy.deepcopy(make_doc())
    corrupt(doc)
    assert refusal(doc) == message


def test_a_full_id_that_does_not_match_the_packages_is_refused() -> None:
    doc = make_doc()
    real = doc["full_id"]
    doc["packages"][0]["version"] = "1.1"
    assert refusal(doc) == (
        f"failed to validate description `{WHERE}`: `full_id` is `{real}` but the packages hash "
        f"to `{full_id(p.identity() for p in packages_of(doc))}`"
    )


def test_a_repeated_package_is_refused() -> None:
    doc = make_doc()
    doc["packages"].append(copy.deepcopy(doc["packages"][0]))
    doc["full_id"] = full_id(p.identity() for p in packages_of(doc))
    assert refusal(doc) == (
        f"failed to validate description `{WHERE}`: `packages[3].name` `python` repeats "
        "`packages[0]`"
    )


def test_bad_json_names_where_it_was_read() -> None:
    with pytest.raises(CorruptDescriptionError) as info:
        decode_description(b'{"schema": ', WHERE)
    assert info.value.message == (
        f"failed to read description `{WHERE}`: invalid JSON at line 1 column 12: Expecting value"
    )
    assert info.value.hint is not None and "--force" in info.value.hint


def test_non_utf8_and_non_objects_are_refused() -> None:
    with pytest.raises(CorruptDescriptionError, match="not UTF-8 at byte 0"):
        decode_description(b"\xff\xfe", WHERE)
    with pytest.raises(CorruptDescriptionError) as info:
        decode_description(b"[]", WHERE)
    assert info.value.message == (
        f"failed to validate description `{WHERE}`: the document is a JSON list, not an object"
    )


def test_validate_without_where_still_names_the_field() -> None:
    doc = make_doc()
    doc["req_id"] = "XYZ"
    with pytest.raises(CorruptDescriptionError) as info:
        validate_description(doc)
    assert info.value.message == (
        "failed to validate description: `req_id` `XYZ` does not match `^[0-9a-f]{40}$`"
    )


def test_build_refuses_a_pypi_package_with_a_build_string() -> None:
    bad = ResolvedPackage(**{**_fields(REQUESTS), "build": "1"})
    with pytest.raises(CorruptDescriptionError, match="pypi package `requests` has build `1`"):
        build_description(
            req_id=REQ_ID,
            platform="linux-64",
            spec=SPEC,
            packages=[bad],
            resolved_at=WHEN,
            resolved_by=ResolvedBy(user="u", agent="a", host="h"),
            solver=SolverInfo(name="rattler", version="0"),
        )


def _fields(p: ResolvedPackage) -> dict[str, Any]:
    return {name: getattr(p, name) for name in ResolvedPackage.__slots__}


def test_timestamps_are_utc_with_z_and_compare_as_times() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert format_timestamp(datetime(2024, 5, 1, 14, 0, tzinfo=plus_two)) == "2024-05-01T12:00:00Z"
    fine = datetime(2024, 5, 1, 12, 0, 0, 500, tzinfo=UTC)
    assert format_timestamp(fine) == "2024-05-01T12:00:00.000500Z"
    assert parse_timestamp("2024-05-01T12:00:00.000500Z") == fine
    assert parse_timestamp("2024-05-01T12:00:00+00:00") is None
    with pytest.raises(InternalError, match="has no timezone"):
        format_timestamp(datetime(2024, 5, 1))


def test_a_description_is_sealed_with_the_digest_of_everything_else() -> None:
    doc = make_doc()
    content = {k: v for k, v in doc.items() if k != "digest"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert doc["digest"] == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert description_digest(doc) == doc["digest"]
    # how it is laid out in bytes does not matter, what it says does
    compact = json.dumps(doc, separators=(",", ":")).encode()
    assert decode_description(compact, WHERE) == doc
    changed = copy.deepcopy(doc)
    changed["packages"][0]["depends"] = []
    assert refusal(changed) == (
        f"failed to validate description `{WHERE}`: `digest` is `{doc['digest']}` but the "
        f"content hashes to `{description_digest(changed)}`"
    )
    resealed = seal_description(changed)
    assert decode_description(encode_description(resealed), WHERE) == resealed
    assert resealed["digest"] != doc["digest"]


def test_writing_a_changed_but_unsealed_description_is_refused() -> None:
    doc = make_doc()
    doc["packages"][0]["url"] = "https://example.org/other.conda"
    with pytest.raises(CorruptDescriptionError, match="failed to validate description: `digest`"):
        encode_description(doc)
