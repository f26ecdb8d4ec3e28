"""Limits on an imported lock: a 900-package lock fits, more than the cap is refused clearly,
and a lock answers only for its own platforms (and only with sha256s under `--no-archives`)."""

from __future__ import annotations

import dataclasses

import pytest

from envd.daemon.limits import (
    MAX_CANONICAL_SPEC_BYTES,
    MAX_LOCKED_PACKAGES,
    MAX_LOCKED_SPEC_BYTES,
    check_locked_archives,
    check_resolve_request,
    check_spec,
)
from envd.errors import InvalidSpecError, RequestTooLargeError
from envd.locks import LockedPackage, LockedPlatform
from envd.spec import RawSpec, Spec, canonical_json, normalize_spec
from envd.v1 import environments_pb2
from envd.wire import spec_to_pb

CHANNEL = "https://conda.anaconda.org/conda-forge"


def package(index: int, platform: str = "linux-64") -> LockedPackage:
    """As big as a real conda-forge entry: a long URL, hashes, a few dependencies."""
    name = f"lib-example-package-{index}"
    filename = f"{name}-1.2.{index}-h1234567_0.conda"
    return LockedPackage(
        kind="conda", name=name, version=f"1.2.{index}", build="h1234567_0",
        url=f"{CHANNEL}/{platform}/{filename}", filename=filename, sha256=f"{index:064x}",
        md5=f"{index:032x}", size=1000 + index,
        depends=("libgcc >=13", "libstdcxx >=13", "libzlib >=1.3.1,<2.0a0", "python_abi 3.12.*"),
        channel=CHANNEL, subdir=platform,
    )  # fmt: skip


def lock_spec(count: int, platforms: tuple[str, ...] = ("linux-64",)) -> Spec:
    return normalize_spec(RawSpec(locked=[
        LockedPlatform(p, tuple(package(i, p) for i in range(count))) for p in platforms
    ]))  # fmt: skip


def test_a_900_package_lock_fits() -> None:
    spec = lock_spec(900)
    canonical = spec.job_bytes("linux-64")  # what its job carries: every package
    assert MAX_CANONICAL_SPEC_BYTES < len(canonical) < MAX_LOCKED_SPEC_BYTES
    check_spec(spec, canonical, ["linux-64"])
    check_resolve_request(
        environments_pb2.ResolveRequest(spec=spec_to_pb(spec), platforms=["linux-64"])
    )


def test_over_the_caps_is_refused_clearly() -> None:
    spec = lock_spec(MAX_LOCKED_PACKAGES // 2 + 1, ("linux-64", "osx-arm64"))
    request = environments_pb2.ResolveRequest(spec=spec_to_pb(spec), platforms=["linux-64"])
    with pytest.raises(RequestTooLargeError, match=rf"pins {MAX_LOCKED_PACKAGES + 2} packages"):
        check_resolve_request(request)
    big = lock_spec(3000)
    with pytest.raises(
        RequestTooLargeError, match=r"a platform's packages of the lock are \d+ bytes; the limit"
    ):
        check_spec(big, big.job_bytes("linux-64"), ["linux-64"])


def test_platforms_outside_the_lock_are_refused() -> None:
    spec = lock_spec(3)
    with pytest.raises(InvalidSpecError, match=r"platform `osx-arm64` is not in the lock"):
        check_spec(spec, canonical_json(spec.to_canonical()), ["osx-arm64"])


def test_md5_only_entries_need_archives() -> None:
    spec = lock_spec(2)
    md5_only = dataclasses.replace(spec.locked[0].packages[0], sha256="")
    spec = dataclasses.replace(spec, locked=(LockedPlatform("linux-64", (md5_only,)),))
    check_locked_archives(spec, no_archives=False)
    with pytest.raises(InvalidSpecError, match=r"has an md5 but no sha256"):
        check_locked_archives(spec, no_archives=True)
