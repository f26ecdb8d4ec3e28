"""Wheels envd built (issue 9 item 4) in lock files, exports and diffs: no index serves the
built wheel, so a lock pins its source (url and that source's sha256, what full_id counts),
which conda-lock, pixi and pip can fetch, verify and build; a rebuild is no change."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rattler
from lock_envs import PLATFORMS, built_wheel, environment, packages, spec

from envd.client.diff import diff_environments
from envd.client.env_export import render_export
from envd.client.lock_export import write_lock
from envd.description import ResolvedBy, SolverInfo, build_description

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # conda-lock warns about its own deprecated imports
    from conda_lock.lockfile import parse_conda_lock_file

WHEEL_SHA = "ab" * 32


def _built_env(wheel_sha256: str = WHEEL_SHA) -> dict[str, dict[str, Any]]:
    plain = environment()
    out = {}
    for platform in PLATFORMS:
        found = [*packages(platform), built_wheel("crcmod", "1.7", platform, wheel_sha256)]
        out[platform] = build_description(
            req_id=plain[platform]["req_id"], platform=platform, spec=spec(), packages=found,
            resolved_at=datetime(2024, 6, 1, tzinfo=UTC),
            resolved_by=ResolvedBy("tester", "none", "tests"), solver=SolverInfo("s", "0"),
        )  # fmt: skip
    return out


def _crcmod(description: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in description["packages"] if p["name"] == "crcmod")


def test_conda_lock_pins_a_built_wheel_by_its_source(tmp_path: Path) -> None:
    descriptions = _built_env()
    source = _crcmod(descriptions["linux-64"])["built"]
    (path,) = write_lock(descriptions, "conda-lock", tmp_path / "conda-lock.yml",
                         req_id="r" * 40, alias=None)  # fmt: skip
    pinned = {(p.platform, p.url, p.hash.sha256)
              for p in parse_conda_lock_file(path).package if p.name == "crcmod"}  # fmt: skip
    assert pinned == {(p, source["source"], source["sha256"]) for p in PLATFORMS}
    assert WHEEL_SHA not in path.read_text()


def test_pixi_lock_pins_a_built_wheel_by_its_source(tmp_path: Path) -> None:
    descriptions = _built_env()
    source = _crcmod(descriptions["osx-arm64"])["built"]
    (path,) = write_lock(descriptions, "pixi", tmp_path / "pixi.lock", req_id="r", alias=None)
    env = rattler.LockFile.from_path(path).default_environment()
    assert env is not None
    pinned = set()
    for platform, locked in env.packages_by_platform().items():
        for p in locked:
            if isinstance(p, rattler.PypiLockedPackage) and p.name == "crcmod":
                assert p.hashes is not None and p.hashes.sha256 is not None
                pinned.add((platform.name, p.location, p.hashes.sha256.hex()))
    assert pinned == {(p, source["source"], source["sha256"]) for p in PLATFORMS}


def test_requirements_txt_hashes_a_built_wheels_source() -> None:
    description = _built_env()["linux-64"]
    text = render_export({"linux-64": description}, "requirements.txt", None).decode()
    sdist_sha = _crcmod(description)["built"]["sha256"]
    assert f"crcmod==1.7 \\\n    --hash=sha256:{sdist_sha}\n" in text
    assert WHEEL_SHA not in text


def test_a_rebuilt_wheel_of_the_same_source_is_no_change() -> None:
    old, new = _built_env(), _built_env(wheel_sha256="cd" * 32)
    assert old["linux-64"]["full_id"] == new["linux-64"]["full_id"]
    linux = diff_environments(old, new)["platforms"]["linux-64"]
    assert (linux["added"], linux["removed"], linux["changed"]) == ([], [], [])
