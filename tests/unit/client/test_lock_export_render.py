"""Lock files read back by the tools' own parsers: conda-lock's `parse_conda_lock_file`,
py-rattler's `LockFile` and its explicit-environment reader see exactly the packages (name,
version, url, hashes) of the descriptions, conda and PyPI, on every platform."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rattler
import yaml
from lock_envs import LONG_REQUIREMENT, PLATFORMS, environment
from packaging.requirements import Requirement
from rattler.explicit_environment import ExplicitEnvironmentSpec

from envd.agents.locked_resolver import SOLVER_NAME, resolved_package
from envd.client.lock_export import build_number, install_order, render_lock, write_lock
from envd.client.lock_readers import read_lock
from envd.description import ResolvedBy, SolverInfo, build_description
from envd.errors import LockExportError
from envd.ids import req_id
from envd.spec import RawSpec, normalize_spec

with warnings.catch_warnings():
    # conda-lock (a test-only reference) warns about its own deprecated imports on import.
    warnings.simplefilter("ignore")
    from conda_lock.lockfile import parse_conda_lock_file

# platform, kind, name, version, url, sha256, md5
Row = tuple[str, str, str, str, str, str, str | None]


def expected(descriptions: Mapping[str, Mapping[str, Any]], md5: bool = True) -> set[Row]:
    return {
        (platform, p["kind"], p["name"], p["version"], p["url"], p["sha256"],
         p["md5"] if md5 else None)
        for platform, d in descriptions.items()
        for p in d["packages"]
    }  # fmt: skip


def test_conda_lock_round_trip_through_conda_locks_parser(tmp_path: Path) -> None:
    descriptions = environment()
    req_id = descriptions["linux-64"]["req_id"]
    (path,) = write_lock(descriptions, "conda-lock", tmp_path / "conda-lock.yml", req_id=req_id,
                         alias="team/app:v1")  # fmt: skip
    lock = parse_conda_lock_file(path)
    kind = {"conda": "conda", "pip": "pypi"}
    seen = {
        (p.platform, kind[p.manager], p.name, p.version, p.url, p.hash.sha256, p.hash.md5)
        for p in lock.package
    }
    assert seen == expected(descriptions)
    assert sorted(lock.metadata.platforms) == list(PLATFORMS)
    assert lock.metadata.custom_metadata == {
        "envd_req_id": req_id,
        "envd_alias": "team/app:v1",
        "envd_full_id.linux-64": descriptions["linux-64"]["full_id"],
        "envd_full_id.osx-arm64": descriptions["osx-arm64"]["full_id"],
    }
    assert [c.url for c in lock.metadata.channels] == ["https://conda.example.invalid/forge"]
    assert set(lock.metadata.content_hash) == set(PLATFORMS)
    assert len(set(lock.metadata.content_hash.values())) == 2  # per platform
    python = next(p for p in lock.package if p.name == "python" and p.platform == "linux-64")
    assert python.dependencies == {"tzdata": "", "libzlib": ">=1.2.13,<2.0a0"}
    app = next(p for p in lock.package if p.name == "envd-app" and p.platform == "linux-64")
    assert app.dependencies == {"envd-native": ">=1", "envd-linux-only": "*"}


def test_conda_lock_without_an_alias_and_a_conda_package_without_md5(tmp_path: Path) -> None:
    descriptions = environment()
    data = render_lock(descriptions, "conda-lock", req_id="r" * 40, alias=None)[""]
    assert "envd_alias" not in yaml.safe_load(data)["metadata"]["custom_metadata"]
    broken = {p: {**d, "packages": [{**q, "md5": None} for q in d["packages"]]}
              for p, d in descriptions.items()}  # fmt: skip
    with pytest.raises(LockExportError, match="conda package `libzlib` on `linux-64` has no md5"):
        render_lock(broken, "conda-lock", req_id="r" * 40, alias=None)


def test_pixi_lock_round_trip_through_py_rattler_with_pypi_hashes(tmp_path: Path) -> None:
    descriptions = environment()
    (path,) = write_lock(descriptions, "pixi", tmp_path / "pixi.lock", req_id="r", alias=None)
    lock = rattler.LockFile.from_path(path)
    env = lock.default_environment()
    assert env is not None
    assert [str(c) for c in env.channels()] == ["https://conda.example.invalid/forge"]
    seen: set[Row] = set()
    requires: dict[str, list[str]] = {}
    builds: dict[str, str] = {}
    for platform, packages in env.packages_by_platform().items():
        for p in packages:
            hashes = p.hashes
            assert hashes is not None, p.name
            sha256 = (hashes.sha256 or b"").hex()
            md5 = hashes.md5.hex() if hashes.md5 else None
            if isinstance(p, rattler.PypiLockedPackage):
                seen.add((platform.name, "pypi", p.name, p.version, p.location, sha256, md5))
                requires[p.name] = p.requires_dist
            else:
                assert isinstance(p, rattler.CondaLockedBinaryPackage), p.name
                record = p.repo_data_record()
                builds[record.file_name] = str(record.build)
                seen.add((platform.name, "conda", record.name.normalized, str(record.version),
                          record.url, sha256, md5))  # fmt: skip
    assert seen == expected(descriptions)
    assert builds == {p["filename"]: p["build"] for d in descriptions.values()
                      for p in d["packages"] if p["kind"] == "conda"}  # fmt: skip
    # py-rattler writes markers its own way (quotes, `and` clauses sorted): compare the clauses
    assert [_clauses(r) for r in requires["envd-app"]] == [
        _clauses("envd-native>=1"),
        _clauses(LONG_REQUIREMENT),
    ]
    assert requires["envd-native"] == []


def _clauses(text: str) -> tuple[str, str, list[str]]:
    requirement = Requirement(text)
    marker = str(requirement.marker) if requirement.marker else ""
    return requirement.name, str(requirement.specifier), sorted(marker.split(" and "))


def test_explicit_files_round_trip_through_py_rattlers_reader(tmp_path: Path) -> None:
    descriptions = environment(pypi=False)
    paths = write_lock(descriptions, "explicit", tmp_path / "env-{platform}.txt", req_id="r",
                       alias=None)  # fmt: skip
    assert [p.name for p in paths] == ["env-linux-64.txt", "env-osx-arm64.txt"]
    for platform, path in zip(PLATFORMS, paths, strict=True):
        spec = ExplicitEnvironmentSpec.from_path(path)
        assert str(spec.platform) == platform
        urls = [entry.url for entry in spec.packages]
        hashed = [url.partition("#sha256:") for url in urls]
        assert all(sep for _, sep, _ in hashed)
        assert {(u, h) for u, _, h in hashed} == {
            (p["url"], p["sha256"]) for p in descriptions[platform]["packages"]
        }


def test_explicit_lists_dependencies_first_and_survives_a_cycle() -> None:
    def package(name: str, *depends: str) -> dict[str, Any]:
        return {"name": name, "depends": list(depends)}

    chain = [package("a", "python >=3.9"), package("python", "zlib 1.*", "tzdata"),
             package("tzdata"), package("zlib", "__glibc >=2.17")]  # fmt: skip
    assert [p["name"] for p in install_order(chain)] == ["tzdata", "zlib", "python", "a"]
    cycle = [package("b", "a"), package("a", "b")]
    assert [p["name"] for p in install_order(cycle)] == ["a", "b"]
    text = render_lock(environment(pypi=False), "explicit", req_id="r", alias=None)["linux-64"]
    names = [line.rpartition("/")[2].split("-")[0] for line in text.decode().splitlines()[5:]]
    assert names == ["libzlib", "tzdata", "python"]


def test_explicit_refuses_pypi_packages_naming_them(tmp_path: Path) -> None:
    with pytest.raises(LockExportError, match=r"for `linux-64`: it holds only conda packages and "
                       r"the environment has 2 PyPI package\(s\): `envd-app`, `envd-native`"):  # fmt: skip
        write_lock(environment(), "explicit", tmp_path / "{platform}.txt", req_id="r", alias=None)
    assert list(tmp_path.iterdir()) == []


def test_explicit_needs_a_platform_pattern_only_for_several_platforms(tmp_path: Path) -> None:
    descriptions = environment(pypi=False)
    with pytest.raises(LockExportError, match=r"has 2 platforms \(`linux-64`, `osx-arm64`\) "
                       r"and the path has no `\{platform\}`"):  # fmt: skip
        write_lock(descriptions, "explicit", tmp_path / "env.txt", req_id="r", alias=None)
    assert list(tmp_path.iterdir()) == []
    one = {"osx-arm64": descriptions["osx-arm64"]}
    (path,) = write_lock(one, "explicit", tmp_path / "env.txt", req_id="r", alias=None)
    assert str(ExplicitEnvironmentSpec.from_path(path).platform) == "osx-arm64"


def test_unknown_format_and_no_environment() -> None:
    with pytest.raises(LockExportError, match="unknown format `poetry`"):
        render_lock(environment(), "poetry", req_id="r", alias=None)
    with pytest.raises(LockExportError, match="no environment to export"):
        render_lock({}, "pixi", req_id="r", alias=None)


@pytest.mark.parametrize(
    ("build", "number"),
    [("h0755675_0_cpython", 0), ("py39hf3d152e_2", 2), ("pyhd8ed1ab_0", 0), ("hd590300_5", 5),
     ("conda_forge", 0), ("2_gnu", 2)],
)  # fmt: skip
def test_build_number_from_the_build_string(build: str, number: int) -> None:
    assert build_number({"build": build}) == number
    assert build_number({"build": build, "build_number": 16}) == 16  # recorded: taken as is


def test_pixi_lock_names_the_pypi_indexes_and_find_links(tmp_path: Path) -> None:
    """A pixi.lock with PyPI packages says where they come from, as pixi writes it (`indexes`,
    `find-links` in the environment, after `channels`), and py-rattler reads it back."""
    import yaml

    page = "https://wheels.example.invalid/links/"
    descriptions = environment()
    for d in descriptions.values():
        d["spec"]["pypi_find_links"] = [page]
    (path,) = write_lock(descriptions, "pixi", tmp_path / "pixi.lock", req_id="r", alias=None)
    written = yaml.safe_load(path.read_text())["environments"]["default"]
    assert list(written)[:3] == ["channels", "indexes", "find-links"]
    assert written["indexes"] == list(descriptions["linux-64"]["spec"]["pypi_indexes"])
    assert written["find-links"] == [{"url": page}]
    env = rattler.LockFile.from_path(path).default_environment()
    assert env is not None and env.pypi_packages()
    conda_only = environment(pypi=False)
    (plain,) = write_lock(conda_only, "pixi", tmp_path / "c.lock", req_id="r", alias=None)
    assert "indexes" not in yaml.safe_load(plain.read_text())["environments"]["default"]


def _imported(lock: Path) -> dict[str, dict[str, Any]]:
    """The descriptions of `lock` imported as `resolve --from-lock` does: read by envd's reader,
    the spec its `locked` form, the packages the locked resolver's."""
    read = read_lock(lock)
    spec = normalize_spec(RawSpec(locked=list(read.platforms)))
    by = ResolvedBy(user="tester", agent="none", host="tests")
    at, solver = datetime(2024, 6, 1, tzinfo=UTC), SolverInfo(name=SOLVER_NAME, version="0")
    descriptions = {}
    for lp in read.platforms:
        packages = [resolved_package(p) for p in lp.packages]
        descriptions[lp.platform] = build_description(
            req_id=req_id(spec), platform=lp.platform, spec=spec, packages=packages,
            resolved_at=at, resolved_by=by, solver=solver,
        )  # fmt: skip
    return descriptions


def test_pixi_lock_of_an_imported_lock_invents_no_index(tmp_path: Path) -> None:
    """An imported lock's spec names no index: the export writes the indexes its PyPI packages
    record, and none (not PyPI's) when they record none; py-rattler reads either back."""
    fixture = Path(__file__).parents[2] / "fixtures/locks/pixi/numpy-as-pypi/pixi.lock"
    descriptions = _imported(fixture)
    (path,) = write_lock(descriptions, "pixi", tmp_path / "pixi.lock", req_id="r", alias=None)
    written = yaml.safe_load(path.read_text())["environments"]["default"]
    assert "indexes" not in written  # the lock's packages record only their files' host
    env = rattler.LockFile.from_path(path).default_environment()
    assert env is not None
    assert [p.name for p in env.pypi_packages()["osx-arm64"]] == ["numpy"]
    index = "https://mirror.example.invalid/pypi/simple"
    for d in descriptions.values():
        for p in d["packages"]:
            if p["kind"] == "pypi":
                p["channel"] = index  # a lock that recorded its index
    (again,) = write_lock(descriptions, "pixi", tmp_path / "b.lock", req_id="r", alias=None)
    assert yaml.safe_load(again.read_text())["environments"]["default"]["indexes"] == [index]
    assert rattler.LockFile.from_path(again).default_environment() is not None
