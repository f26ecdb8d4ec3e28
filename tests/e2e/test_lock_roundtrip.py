"""Real lock files from public projects imported (`resolve --from-lock … --no-archives`, through
the embedded default: their conda-forge URLs are out of reach) and exported again with `lock` in
every format: the tools' own parsers (conda-lock's `parse_conda_lock_file`, py-rattler's
`LockFile` and `ExplicitEnvironmentSpec`) read the original and each export, and must see the same
packages with the same urls and hashes; exporting in the same format and importing that again
gives the same req_id."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import rattler
from rattler.explicit_environment import ExplicitEnvironmentSpec
from test_cli import one_json, run_client

from envd.locks import noarch_name
from harness import ROOT, Cluster

with warnings.catch_warnings():
    # conda-lock (a test-only reference) warns about its own deprecated imports on import.
    warnings.simplefilter("ignore")
    from conda_lock.lockfile import parse_conda_lock_file

pytestmark = pytest.mark.e2e
LOCKS = ROOT / "tests" / "fixtures" / "locks"
CONDA_LOCK = LOCKS / "conda-lock" / "test-install-with-pip-deps" / "conda-lock.yml"
PIXI_CONDA = LOCKS / "pixi" / "geos-rs" / "pixi.lock"
PIXI_PYPI = LOCKS / "pixi" / "numpy-as-pypi" / "pixi.lock"
PIXI_GROUPS = LOCKS / "pixi" / "solve-groups" / "pixi.lock"  # default, max-py310, min-py38
EXPLICIT_MD5 = LOCKS / "explicit" / "xtensor_linux-64.txt"

# platform, kind, name, version, url, sha256, md5: what every format carries
Row = tuple[str, str, str, str, str, str, str | None]


def _import(tmp_path: Path, lock: Path, *args: str) -> dict[str, Any]:
    out = run_client(
        "resolve", "--from-lock", str(lock), *args, "--no-archives", "--json", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    return one_json(out)


def _lock(tmp_path: Path, req_id: str, fmt: str, output: str) -> list[Path]:
    out = run_client("lock", req_id, "--format", fmt, "-o", output, "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return [tmp_path / name for name in json.loads(out.stdout)["files"]]


def conda_lock_rows(path: Path) -> tuple[set[Row], set[tuple[str, str, str]]]:
    """Rows, and each package's dependencies (platform, name, `dep spec`…) as conda-lock reads
    them."""
    lock = parse_conda_lock_file(path)
    rows, depends = set(), set()
    for p in lock.package:
        kind = "conda" if p.manager == "conda" else "pypi"
        rows.add((p.platform, kind, p.name, p.version, p.url, p.hash.sha256 or "", p.hash.md5))
        deps = " ".join(sorted(f"{n}:{s}" for n, s in p.dependencies.items()))
        depends.add((p.platform, p.name, deps))
    return rows, depends


def pixi_rows(path: Path, environment: str = "default") -> tuple[set[Row], set[tuple[Any, ...]]]:
    """Rows, and what only pixi.lock carries: build, build number, noarch, subdir and
    dependencies of conda packages, `requires_dist` of PyPI ones."""
    env = rattler.LockFile.from_path(path).environment(environment)
    assert env is not None
    rows: set[Row] = set()
    details: set[tuple[Any, ...]] = set()
    for platform, packages in env.packages_by_platform().items():
        for p in packages:
            sha256 = p.hashes.sha256.hex() if p.hashes and p.hashes.sha256 else ""
            if isinstance(p, rattler.PypiLockedPackage):
                rows.add((platform.name, "pypi", p.name, p.version, p.location, sha256, None))
                details.add((platform.name, p.name, tuple(sorted(p.requires_dist))))
                continue
            assert isinstance(p, rattler.CondaLockedBinaryPackage), p.name
            r = p.repo_data_record()
            md5 = r.md5.hex() if r.md5 else None
            rows.add((platform.name, "conda", p.name, str(r.version), r.url, sha256, md5))
            noarch = noarch_name(r.noarch)
            details.add((platform.name, p.name, str(r.build), r.build_number, noarch,
                         r.subdir, tuple(sorted(r.depends))))  # fmt: skip
    return rows, details


def explicit_rows(paths: list[Path]) -> set[tuple[str, str, str]]:
    """platform, url, hash (`sha256:<hex>` or the md5) of each `@EXPLICIT` entry."""
    rows = set()
    for path in paths:
        spec = ExplicitEnvironmentSpec.from_path(path)
        for entry in spec.packages:
            url, _, fragment = entry.url.partition("#")
            rows.add((str(spec.platform), url, fragment))
    return rows


def as_explicit(rows: set[Row]) -> set[tuple[str, str, str]]:
    return {(r[0], r[4], f"sha256:{r[5]}" if r[5] else str(r[6])) for r in rows if r[1] == "conda"}


def test_conda_lock_fixture_round_trip(tmp_path: Path) -> None:
    original, depends = conda_lock_rows(CONDA_LOCK)
    assert {r[1] for r in original} == {"conda", "pypi"}  # the fixture mixes both
    imported = _import(tmp_path, CONDA_LOCK)
    req_id = imported["req_id"]

    (same,) = _lock(tmp_path, req_id, "conda-lock", "again/conda-lock.yml")
    assert conda_lock_rows(same) == (original, depends)
    assert _import(tmp_path, same)["req_id"] == req_id  # the same lock content, the same req_id

    (pixi,) = _lock(tmp_path, req_id, "pixi", "pixi.lock")
    rows, _ = pixi_rows(pixi)
    assert rows == original
    shown = run_client("show", req_id, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    platforms = sorted({r[0] for r in original})
    for platform in platforms:
        conda = sum(1 for r in original if r[:2] == (platform, "conda"))
        pypi = sum(1 for r in original if r[:2] == (platform, "pypi"))
        assert (
            "Requested: the packages of a lock file\nLock: imported with `resolve --from-lock` "
            f"(not solved), pinning {len(platforms)} platform(s): {', '.join(platforms)}; "
            f"{conda + pypi} packages for {platform} ({conda} conda, {pypi} PyPI)\n"
        ) in shown.stdout
    listed = run_client("list", cwd=tmp_path).stdout
    assert listed.count("lock:mixed") == len(platforms), listed
    refused = run_client("lock", req_id, "--format", "explicit", "-o", "{platform}.txt",
                         cwd=tmp_path)  # fmt: skip
    assert refused.returncode == 2 and "PyPI package(s): `certifi`" in refused.stderr


@pytest.mark.parametrize("fixture", [PIXI_CONDA, PIXI_PYPI], ids=["geos-rs", "numpy-as-pypi"])
def test_pixi_fixture_round_trip(tmp_path: Path, fixture: Path) -> None:
    original, details = pixi_rows(fixture)
    imported = _import(tmp_path, fixture)
    req_id = imported["req_id"]

    (same,) = _lock(tmp_path, req_id, "pixi", "again/pixi.lock")
    assert pixi_rows(same) == (original, details)
    assert _import(tmp_path, same)["req_id"] == req_id

    (conda_lock,) = _lock(tmp_path, req_id, "conda-lock", "conda-lock.yml")
    rows, _ = conda_lock_rows(conda_lock)
    assert rows == original
    if all(r[1] == "conda" for r in original):
        explicit = _lock(tmp_path, req_id, "explicit", "explicit/{platform}.txt")
        assert explicit_rows(explicit) == as_explicit(original)


def test_named_pixi_environment_round_trip(tmp_path: Path) -> None:
    """`--lock-environment NAME` imports that environment (`max-py310`: conda packages only,
    `min-py38`: conda and PyPI), which exports back the same; a name the lock lacks is refused
    listing the ones it has."""
    req_ids = set()
    for name, kinds in (("max-py310", {"conda"}), ("min-py38", {"conda", "pypi"})):
        original, details = pixi_rows(PIXI_GROUPS, name)
        assert {r[1] for r in original} == kinds
        req_id = _import(tmp_path, PIXI_GROUPS, "--lock-environment", name)["req_id"]
        (exported,) = _lock(tmp_path, req_id, "pixi", f"{name}/pixi.lock")
        assert pixi_rows(exported) == (original, details)  # as the lock's `default`
        req_ids.add(req_id)
    assert len(req_ids) == 2
    out = run_client("resolve", "--from-lock", str(PIXI_GROUPS), "--lock-environment", "py39",
                     "--no-archives", cwd=tmp_path)  # fmt: skip
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == (
        f"error: `{PIXI_GROUPS}` has no environment `py39`\nhint: it has `default`, "
        "`max-py310`, `min-py38`: choose one with `--lock-environment NAME`\n"
    )
    out = run_client("resolve", "-p", "python", "--lock-environment", "x", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.startswith(
        "error: `--lock-environment` goes with `--from-lock`\n"
    )


def test_explicit_round_trip(tmp_path: Path) -> None:
    """`@EXPLICIT` files of a real lock (geos-rs, four platforms, `url#sha256:`) imported one by
    one and exported again: the same entries; a real md5-only file can't be imported without
    fetching, and says so."""
    original, _ = pixi_rows(PIXI_CONDA)
    req_id = _import(tmp_path, PIXI_CONDA)["req_id"]
    files = _lock(tmp_path, req_id, "explicit", "first/{platform}.txt")
    assert len(files) == 4 and explicit_rows(files) == as_explicit(original)
    again = []
    for path in files:
        single = _import(tmp_path, path)["req_id"]
        assert single != req_id
        again += _lock(tmp_path, single, "explicit", f"second/{path.name}")
    # the same entries; not the same order: an `@EXPLICIT` file holds no dependencies to sort by
    assert explicit_rows(again) == explicit_rows(files)

    out = run_client("resolve", "--from-lock", str(EXPLICIT_MD5), "--no-archives", cwd=tmp_path)
    assert out.returncode != 0
    assert "`_libgcc_mutex` (linux-64) has an md5 but no sha256" in out.stderr


def test_lock_urls_outside_the_policy_refused_before_any_job(
    tmp_path: Path, cluster: Cluster
) -> None:
    """A daemon that allows conda-forge but only a private PyPI index: the conda-lock fixture's
    PyPI wheels (files.pythonhosted.org) are refused, and the pixi fixture's prefix.dev conda
    archives; each refusal names the first URL outside, and no job is created (nor an agent
    needed)."""
    forge = "https://conda.anaconda.org/conda-forge"
    cluster.start_daemon(args=["--allow-channel", forge,
                               "--allow-pypi-index", "https://pypi.corp.example/*"])  # fmt: skip
    env = {"ENVD_COORDINATOR": cluster.address}
    rows, _ = conda_lock_rows(CONDA_LOCK)
    first_pypi = min((r for r in rows if r[1] == "pypi"), key=lambda r: (r[0], r[2]))
    out = run_client("resolve", "--from-lock", str(CONDA_LOCK), cwd=tmp_path, env=env)
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr.startswith(
        f"error: locked PyPI file `{first_pypi[4]}` is not allowed by this coordinator: it "
        "matches no `--allow-pypi-index` pattern of the coordinator "
        "(`https://pypi.corp.example/*`)\n"
    ), out.stderr

    pixi, _ = pixi_rows(PIXI_PYPI)
    first_conda = min((r for r in pixi if r[1] == "conda"), key=lambda r: r[2])
    out = run_client("resolve", "--from-lock", str(PIXI_PYPI), cwd=tmp_path, env=env)
    assert out.returncode == 2
    assert out.stderr.startswith(
        f"error: locked package URL `{first_conda[4]}` is not allowed by this coordinator: its "
        "channel `https://prefix.dev/conda-forge` is not allowed: it matches no "
        "`--allow-channel` pattern of the coordinator\n"
    ), out.stderr
    assert "job-" not in out.stderr + cluster.processes[0].log()
    assert not (cluster.root / "store" / "envs").exists()
