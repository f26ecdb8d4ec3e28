"""The locked form of a spec: req_id from the lock's packages alone, checked at every edge."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from envd.client.lock_readers import read_lock
from envd.errors import InvalidLockError, InvalidSpecError
from envd.ids import req_id
from envd.locks import LockedPackage, LockedPlatform
from envd.spec import (
    EnvType,
    RawDependency,
    RawSpec,
    Spec,
    canonical_json,
    normalize_spec,
    spec_from_canonical,
)
from envd.wire import raw_spec_from_pb, spec_to_pb
from harness import ROOT

LOCKS = ROOT / "tests" / "fixtures" / "locks"
CONDA_LOCK = LOCKS / "conda-lock" / "test-install-with-pip-deps" / "conda-lock.yml"


def locked_spec(path: Path) -> Spec:
    return normalize_spec(RawSpec(locked=list(read_lock(path).platforms)))


def test_same_lock_same_req_id_whatever_order_and_comments(tmp_path: Path) -> None:
    text = CONDA_LOCK.read_text()
    head, _, body = text.partition("package:\n")
    entries = ["- " + e for e in body.split("\n- ") if e.strip()]
    entries[0] = entries[0][2:]
    shuffled = tmp_path / "conda-lock.yml"
    shuffled.write_text(
        "# reordered, with comments\n" + head + "package:\n" + "\n".join(reversed(entries)) + "\n"
    )
    assert shuffled.read_text() != text
    first, again = locked_spec(CONDA_LOCK), locked_spec(shuffled)
    assert req_id(first) == req_id(again)
    assert canonical_json(first.to_canonical()) == canonical_json(again.to_canonical())


@pytest.mark.parametrize("field", ["version", "sha256", "url", "build", "depends"])
def test_any_package_change_changes_req_id(field: str) -> None:
    spec = locked_spec(CONDA_LOCK)
    platform = spec.locked[0]
    package = platform.packages[0]
    changed_value: Any = {
        "version": "0.2", "sha256": "0" * 64, "url": package.url.replace("0.1", "0.2"),
        "build": "other_0", "depends": ("something",),
    }[field]  # fmt: skip
    changed = dataclasses.replace(package, **{field: changed_value})
    if field == "url":
        changed = dataclasses.replace(changed, filename=changed.url.rsplit("/", 1)[-1])
    other = dataclasses.replace(
        spec, locked=(LockedPlatform(platform.platform, (changed, *platform.packages[1:])),
                      *spec.locked[1:]),
    )  # fmt: skip
    assert req_id(other) != req_id(spec)


def test_dropping_a_platform_changes_req_id() -> None:
    spec = locked_spec(CONDA_LOCK)
    assert req_id(dataclasses.replace(spec, locked=spec.locked[:1])) != req_id(spec)


def test_locked_spec_round_trips_canonical_and_wire() -> None:
    spec = locked_spec(CONDA_LOCK)
    assert spec.env_type is EnvType.MIXED  # conda and pip packages
    assert spec.channels == ("https://conda.anaconda.org/conda-forge",)
    canonical = json.loads(canonical_json(spec.to_canonical()))
    assert req_id(spec_from_canonical(canonical)) == req_id(spec)
    assert normalize_spec(raw_spec_from_pb(spec_to_pb(spec))) == spec


def test_canonical_holds_summaries_and_a_job_its_platforms_packages() -> None:
    spec = locked_spec(CONDA_LOCK)
    linux, aarch64 = spec.locked
    summaries = spec.to_canonical()["locked"]
    assert summaries == {
        "linux-64": {"sha256": linux.digest(), "kinds": ["conda", "pypi"]},
        "linux-aarch64": {"sha256": aarch64.digest(), "kinds": ["conda", "pypi"]},
    }
    job = spec_from_canonical(json.loads(spec.job_bytes("linux-aarch64")))
    assert req_id(job) == req_id(spec)  # what the agent checks
    assert job.env_type is EnvType.MIXED
    assert job.locked[1].packages == aarch64.packages
    assert job.locked[0].packages == () and job.locked[0].digest() == linux.digest()
    assert len(spec.job_bytes("linux-aarch64")) > 10 * len(spec.canonical_bytes())


def test_a_spec_without_lock_keeps_its_canonical_form() -> None:
    spec = normalize_spec(RawSpec(conda=[RawDependency("numpy")], channels=["conda-forge"]))
    assert "locked" not in spec.to_canonical()


def test_lock_with_dependencies_is_refused() -> None:
    lock = read_lock(CONDA_LOCK)
    with pytest.raises(InvalidSpecError, match=r"carries only the lock's packages"):
        normalize_spec(RawSpec(locked=list(lock.platforms), conda=[RawDependency("numpy")]))


def test_coordinator_rechecks_what_a_client_sent() -> None:
    spec = locked_spec(CONDA_LOCK)
    bad = dataclasses.replace(spec.locked[0].packages[0], sha256="", md5=None)
    forged = dataclasses.replace(spec, locked=(LockedPlatform("linux-64", (bad,)),))
    with pytest.raises(InvalidLockError, match=r"`_libgcc_mutex` at the lock linux-64\[0\]"):
        normalize_spec(raw_spec_from_pb(spec_to_pb(forged)))


def test_the_same_package_twice_is_one_and_a_conflict_is_refused() -> None:
    package = locked_spec(CONDA_LOCK).locked[0].packages[0]
    one = normalize_spec(RawSpec(locked=[LockedPlatform("linux-64", (package, package))]))
    assert one.locked[0].packages == (package,)
    other: LockedPackage = dataclasses.replace(package, sha256="1" * 64)
    with pytest.raises(InvalidLockError, match=r"pins conda package `_libgcc_mutex` twice"):
        normalize_spec(RawSpec(locked=[LockedPlatform("linux-64", (package, other))]))


def test_pixi_build_numbers_and_noarch_travel_and_count() -> None:
    """A pixi.lock's build number and noarch kind: in the canonical form (so in req_id) and
    on the wire when recorded, absent when not (a conda-lock's req_id is what it was)."""
    spec = locked_spec(LOCKS / "pixi" / "numpy-as-pypi" / "pixi.lock")
    (platform,) = spec.locked
    python = next(p for p in platform.packages if p.name == "python")
    tzdata = next(p for p in platform.packages if p.name == "tzdata")
    assert (python.build_number, python.noarch, tzdata.noarch) == (101, None, "generic")
    assert python.to_canonical()["build_number"] == 101 and "noarch" not in python.to_canonical()
    assert normalize_spec(raw_spec_from_pb(spec_to_pb(spec))) == spec
    job = spec_from_canonical(json.loads(spec.job_bytes("osx-arm64")))
    assert job.locked[0].packages == platform.packages and req_id(job) == req_id(spec)
    other = dataclasses.replace(python, build_number=100)
    changed = (LockedPlatform("osx-arm64", tuple(other if p is python else p
                                                  for p in platform.packages)),)  # fmt: skip
    assert req_id(dataclasses.replace(spec, locked=changed)) != req_id(spec)
    conda_lock = locked_spec(CONDA_LOCK)
    assert all(p.build_number is None and "build_number" not in p.to_canonical()
               for lp in conda_lock.locked for p in lp.packages)  # fmt: skip
    for bad, reason in ((dict(build_number=-1), "build number -1 is negative"),
                        (dict(noarch="r"), "noarch kind `r` is neither")):  # fmt: skip
        broken = (LockedPlatform("osx-arm64", (dataclasses.replace(python, **bad),)),)
        with pytest.raises(InvalidLockError, match=reason):
            normalize_spec(RawSpec(locked=list(broken)))


def test_an_anaconda_token_in_a_lock_url_is_refused_masked(tmp_path: Path) -> None:
    lines = (LOCKS / "explicit" / "xtensor_linux-64.txt").read_text("utf-8").splitlines()
    token = "xy-0123456789abcdef"  # anaconda.org's `/t/<token>/` form
    lines[5] = lines[5].replace("conda.anaconda.org/", f"conda.anaconda.org/t/{token}/")
    path = tmp_path / "explicit.txt"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    with pytest.raises(InvalidLockError) as refused:
        read_lock(path)
    text = refused.value.message + (refused.value.hint or "")
    assert token not in text
    assert refused.value.message == (
        f"invalid lock entry `libstdcxx-ng` at `{path}` linux-64[1]: its URL "
        "`https://conda.anaconda.org/t/<token>/conda-forge/linux-64/"
        "libstdcxx-ng-9.3.0-h2ae2ef3_17.tar.bz2` carries an anaconda.org token; it would be "
        "written into ids, descriptions and exports"
    )
    assert "channel credentials" in (refused.value.hint or "")
    # a client that skips the check: the coordinator's normalization refuses it the same way
    package = locked_spec(CONDA_LOCK).locked[0].packages[0]
    tokened = dataclasses.replace(
        package, url=package.url.replace("conda.anaconda.org/", f"conda.anaconda.org/t/{token}/")
    )
    with pytest.raises(InvalidLockError, match=r"carries an anaconda.org token") as again:
        normalize_spec(RawSpec(locked=[LockedPlatform("linux-64", (tokened,))]))
    assert token not in again.value.message
