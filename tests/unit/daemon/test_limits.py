"""Request limits, checked before anything is stored."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from envd.daemon.limits import (
    AGENT_MESSAGE_LIMIT,
    MAX_CANONICAL_SPEC_BYTES,
    MAX_PLATFORMS,
    MAX_STRING_CHARS,
    check_resolve_request,
    check_spec,
)
from envd.errors import EnvdError, InvalidSpecError, RequestTooLargeError
from envd.spec import RawDependency, RawSpec, canonical_json, normalize_spec
from envd.spec_input import MAX_DEPENDENCIES
from envd.v1 import common_pb2, environments_pb2


def request(**spec: Any) -> environments_pb2.ResolveRequest:
    base: dict[str, Any] = {"conda": [common_pb2.CondaDependency(spec="python")],
                               "channels": ["conda-forge"]}  # fmt: skip
    base.update(spec)
    return environments_pb2.ResolveRequest(
        spec=common_pb2.Spec(**base),
        platforms=["linux-64"],
    )


def test_a_plain_request_passes() -> None:
    check_resolve_request(request())


def test_counts() -> None:
    too_many = request()
    too_many.platforms.extend(["linux-64"] * MAX_PLATFORMS)
    with pytest.raises(RequestTooLargeError, match=f"limit is {MAX_PLATFORMS}"):
        check_resolve_request(too_many)
    none = request()
    del none.platforms[:]
    with pytest.raises(InvalidSpecError, match="no target platform given"):
        check_resolve_request(none)


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ({"channels": ["conda-\x00forge"]}, "spec.channels[0]"),
        ({"conda": [common_pb2.CondaDependency(spec="py\x00thon")]}, "spec.conda[0].spec"),
        ({"virtual_packages": {"__glibc": "2.\x0017"}}, "spec.virtual_packages[__glibc]"),
        ({"virtual_packages": {"__gl\x00ibc": "2.17"}}, "spec.virtual_packages[__gl\x00ibc]"),
    ],
)
def test_nul_bytes_are_refused_naming_the_field(spec: dict[str, object], where: str) -> None:
    with pytest.raises(InvalidSpecError) as info:
        check_resolve_request(request(**spec))
    assert info.value.message == f"`{where}` contains a NUL byte"


def test_long_strings_are_refused_without_echoing_them() -> None:
    long = "x" * (MAX_STRING_CHARS + 1)
    with pytest.raises(RequestTooLargeError) as info:
        check_resolve_request(request(channels=[long]))
    assert info.value.message == (
        f"`spec.channels[0]` is {MAX_STRING_CHARS + 1} characters long; the limit is "
        f"{MAX_STRING_CHARS}"
    )
    requester = request()
    requester.requester.user = long
    with pytest.raises(RequestTooLargeError, match=r"`requester\.user`"):
        check_resolve_request(requester)


def test_virtual_packages_the_solver_cannot_take_are_refused() -> None:
    spec = normalize_spec(RawSpec(conda=[RawDependency("python")], channels=["conda-forge"],
                                  virtual_packages={"__osx": "not a version!"}))  # fmt: skip
    with pytest.raises(InvalidSpecError, match="invalid virtual package value for `osx-arm64`"):
        check_spec(spec, canonical_json(spec.to_canonical()), ["osx-arm64"])
    good = normalize_spec(RawSpec(conda=[RawDependency("python")], channels=["conda-forge"],
                                  virtual_packages={"__osx": "13.0", "__glibc": "2.28"}))  # fmt: skip
    check_spec(good, canonical_json(good.to_canonical()), ["osx-arm64", "linux-64"])


def test_the_stored_spec_is_bounded() -> None:
    spec = normalize_spec(RawSpec(conda=[RawDependency("python")], channels=["conda-forge"]))
    with pytest.raises(RequestTooLargeError, match="the normalized spec is"):
        check_spec(spec, b"x" * (MAX_CANONICAL_SPEC_BYTES + 1), ["linux-64"])


def test_error_messages_are_bounded() -> None:
    err = EnvdError("bad input: " + "y" * 10_000, hint="h" * 5_000)
    assert len(err.message) <= 2000 and err.message.endswith("… (8051 more characters)")
    assert err.message.startswith("bad input: yyy")
    assert err.hint is not None and len(err.hint) <= 500
    assert EnvdError("short").message == "short"


def test_every_limit_at_its_edge() -> None:
    """Exactly at a limit is allowed, one past it refused (both sides of each comparison)."""
    at_limit = request()
    at_limit.platforms.extend(["linux-64"] * (MAX_PLATFORMS - 1))
    check_resolve_request(at_limit)
    check_resolve_request(request(channels=["c" * MAX_STRING_CHARS]))
    half = MAX_DEPENDENCIES // 2
    conda = [common_pb2.CondaDependency(spec=f"p{i}") for i in range(half)]
    pypi = [common_pb2.PypiDependency(requirement=f"q{i}") for i in range(MAX_DEPENDENCIES - half)]
    check_resolve_request(request(conda=conda, pypi=pypi))  # conda + pypi, exactly the limit
    with pytest.raises(RequestTooLargeError, match=f"{MAX_DEPENDENCIES + 1} dependencies"):
        check_resolve_request(request(conda=[*conda, common_pb2.CondaDependency(spec="x")],
                                      pypi=pypi))  # fmt: skip
    spec = normalize_spec(RawSpec(conda=[RawDependency("python")], channels=["conda-forge"]))
    check_spec(spec, b"x" * MAX_CANONICAL_SPEC_BYTES, ["linux-64"])


def test_a_nul_after_a_map_field_is_still_found() -> None:
    """Fields after a map (here `exclude_newer`, after `virtual_packages`) are checked too,
    and a long map key is named by its first 40 characters."""
    with pytest.raises(InvalidSpecError, match=r"`spec\.exclude_newer` contains a NUL byte"):
        check_resolve_request(request(virtual_packages={"__glibc": "2.28"},
                                      exclude_newer="2024\x00"))  # fmt: skip
    key = "__" + "k" * 100
    with pytest.raises(InvalidSpecError) as info:
        check_resolve_request(request(virtual_packages={key: "1\x00"}))
    assert info.value.message == f"`spec.virtual_packages[{key[:40]}]` contains a NUL byte"
    bad_key = key + "\x00"
    with pytest.raises(InvalidSpecError) as keyed:
        check_resolve_request(request(virtual_packages={bad_key: "1"}))
    assert keyed.value.message == f"`spec.virtual_packages[{bad_key[:40]}]` contains a NUL byte"


def test_the_limits_are_the_documented_ones() -> None:
    """docs/architecture.md states them to operators; the code keeps to its word."""
    text = (Path(__file__).resolve().parents[3] / "docs" / "architecture.md").read_text()
    doc = " ".join(text.split())
    stated = (
        f"{MAX_PLATFORMS} platforms, {MAX_DEPENDENCIES:,} dependencies, "
        f"{MAX_STRING_CHARS:,} characters per string"
    )
    assert stated in doc
    kib = re.search(r"at most (\d+) KiB", doc)
    mib = re.search(r"an agent's (\d+) MiB stream", doc)
    assert kib and mib
    assert MAX_CANONICAL_SPEC_BYTES == int(kib[1]) * 1024
    assert AGENT_MESSAGE_LIMIT == int(mib[1]) * 1024 * 1024
    assert MAX_CANONICAL_SPEC_BYTES * 2 < AGENT_MESSAGE_LIMIT  # the margin the doc promises
