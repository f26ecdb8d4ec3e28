"""Lock files, exports and diff as a user runs them: resolve through a daemon and an agent
(separate processes for the conda environment, the embedded default for the PyPI one), then `lock` in the three formats read back by conda-lock's and py-rattler's
own parsers, `export`, and `diff` of the same spec resolved at two `--exclude-newer` moments."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import rattler
import yaml
from rattler.explicit_environment import ExplicitEnvironmentSpec
from test_cli import one_json, run_client

from harness import EXAMPLE_CHANNEL, Cluster
from pypi_index import serve_index

with warnings.catch_warnings():
    # conda-lock (a test-only reference) warns about its own deprecated imports on import.
    warnings.simplefilter("ignore")
    from conda_lock.lockfile import parse_conda_lock_file

pytestmark = pytest.mark.e2e
PLATFORMS = ["linux-64", "osx-arm64"]
ARCHES = ["--arch", "linux-64", "--arch", "osx-arm64"]
Row = tuple[str, str, str, str, str]  # platform, name, version, url, sha256
Env = dict[str, str | None] | None


def _resolve(tmp_path: Path, *args: str, env: Env = None) -> dict[str, Any]:
    out = run_client("resolve", *args, *ARCHES, "--no-archives", "--json", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    return one_json(out)


def _descriptions(tmp_path: Path, ident: str, env: Env = None) -> dict[str, dict[str, Any]]:
    shown = run_client("show", ident, "--json", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    return {e["description"]["platform"]: e["description"] for e in json.loads(shown.stdout)}


def _rows(descriptions: dict[str, dict[str, Any]]) -> set[Row]:
    return {
        (platform, p["name"], p["version"], p["url"], p["sha256"])
        for platform, d in descriptions.items()
        for p in d["packages"]
    }


def _lock(
    tmp_path: Path, ident: str, fmt: str, output: str, env: Env = None
) -> tuple[int, list[str], str]:
    out = run_client("lock", ident, "--format", fmt, "-o", output, "--json", cwd=tmp_path, env=env)
    files = json.loads(out.stdout)["files"] if out.returncode == 0 else []
    return out.returncode, files, out.stderr


def _conda_lock_rows(path: Path) -> tuple[set[Row], dict[str, str]]:
    lock = parse_conda_lock_file(path)
    rows = {(p.platform, p.name, p.version, p.url, p.hash.sha256 or "") for p in lock.package}
    return rows, lock.metadata.custom_metadata or {}


def _pixi_rows(path: Path) -> set[Row]:
    env = rattler.LockFile.from_path(path).default_environment()
    assert env is not None
    rows = set()
    for platform, packages in env.packages_by_platform().items():
        for p in packages:
            assert p.hashes is not None and p.hashes.sha256 is not None, p.name
            if isinstance(p, rattler.PypiLockedPackage):
                version, url = p.version, p.location
            else:
                assert isinstance(p, rattler.CondaLockedBinaryPackage), p.name
                record = p.repo_data_record()
                version, url = str(record.version), record.url
            rows.add((platform.name, p.name, version, url, p.hashes.sha256.hex()))
    return rows


def test_conda_environment_locked_exported_and_diffed(tmp_path: Path, cluster: Cluster) -> None:
    cluster.start_daemon()
    cluster.start_agent("agent", PLATFORMS)
    env: Env = {"ENVD_COORDINATOR": cluster.address}
    spec = ["-c", str(EXAMPLE_CHANNEL), "-p", "python=3.9"]
    old = _resolve(tmp_path, *spec, "--exclude-newer", "2024-03-01", "--alias", "team/py:old",
                   env=env)  # fmt: skip
    new = _resolve(tmp_path, *spec, "--exclude-newer", "2024-06-01", env=env)
    descriptions = _descriptions(tmp_path, "team/py:old", env)
    assert sorted(descriptions) == PLATFORMS
    expected = _rows(descriptions)

    code, (conda_lock,), err = _lock(tmp_path, "team/py:old", "conda-lock", "conda-lock.yml", env)
    assert code == 0, err
    rows, custom = _conda_lock_rows(tmp_path / conda_lock)
    assert rows == expected
    assert (custom["envd_req_id"], custom["envd_alias"]) == (old["req_id"], "team/py:old")
    code, (pixi,), err = _lock(tmp_path, old["req_id"], "pixi", "pixi.lock", env)
    assert code == 0, err
    assert _pixi_rows(tmp_path / pixi) == expected
    code, files, err = _lock(tmp_path, old["req_id"], "explicit", "explicit-{platform}.txt", env)
    assert code == 0, err
    assert files == ["explicit-linux-64.txt", "explicit-osx-arm64.txt"]
    assert not (tmp_path / "home").exists()  # everything went through the coordinator
    seen = set()
    for platform, name in zip(PLATFORMS, files, strict=True):
        explicit = ExplicitEnvironmentSpec.from_path(tmp_path / name)
        assert str(explicit.platform) == platform
        for entry in explicit.packages:
            url, _, sha256 = entry.url.partition("#sha256:")
            seen.add((platform, url, sha256))
    assert seen == {(platform, url, sha256) for platform, _, _, url, sha256 in expected}

    refused = run_client("export", "team/py:old", "--format", "environment.yml", cwd=tmp_path,
                         env=env)  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr == (
        "error: failed to export environment.yml: the environment's 2 platforms pin different "
        "packages (`linux-64`, `osx-arm64`)\nhint: choose one with `--platform PLATFORM`\n"
    )
    exported = run_client("export", "team/py:old", "--format", "environment.yml",
                          "--platform", "linux-64", cwd=tmp_path, env=env)  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    pins = yaml.safe_load(exported.stdout)["dependencies"]
    assert pins == [f"{p['name']}={p['version']}={p['build']}"
                    for p in descriptions["linux-64"]["packages"]]  # fmt: skip

    diffed = run_client("diff", old["req_id"], new["req_id"], "--json", cwd=tmp_path, env=env)
    assert diffed.returncode == 0, diffed.stderr
    document = one_json(diffed)
    assert (document["old"]["req_id"], document["new"]["req_id"]) == (old["req_id"], new["req_id"])
    for platform in PLATFORMS:
        entry = document["platforms"][platform]
        python = next(r for r in entry["changed"] if r["name"] == "python")
        assert (python["kind"], python["old_version"], python["new_version"]) == (
            "conda", "3.9.18", "3.9.19",
        )  # fmt: skip
    text = run_client("diff", "team/py:old", new["req_id"], cwd=tmp_path, env=env).stdout
    assert "  ~ python " in text and "3.9.18 h0755675_1_cpython → 3.9.19 h0755675_0_cpython" in text


def test_pypi_environment_locked_with_hashes_and_refused_as_explicit(tmp_path: Path) -> None:
    with serve_index(tmp_path / "index") as index:
        requirements = tmp_path / "requirements.txt"
        requirements.write_text(f"-i {index.url}\nenvd-app\n")
        resolved = _resolve(tmp_path, "-r", str(requirements), "--python", "3.11")
    req_id = resolved["req_id"]
    descriptions = _descriptions(tmp_path, req_id)
    expected = _rows(descriptions)
    assert {"envd-app", "envd-native"} <= {name for _, name, _, _, _ in expected}

    code, (conda_lock,), err = _lock(tmp_path, req_id, "conda-lock", "conda-lock.yml")
    assert code == 0, err
    rows, custom = _conda_lock_rows(tmp_path / conda_lock)
    assert rows == expected and "envd_alias" not in custom
    code, (pixi,), err = _lock(tmp_path, req_id, "pixi", "pixi.lock")
    assert code == 0, err
    assert _pixi_rows(tmp_path / pixi) == expected
    code, files, err = _lock(tmp_path, req_id, "explicit", "{platform}.txt")
    assert (code, files) == (2, [])
    names = ", ".join(f"`{p['name']}`" for p in descriptions["linux-64"]["packages"])
    assert err.startswith(
        "error: failed to export an `@EXPLICIT` file for `linux-64`: it holds only conda "
        f"packages and the environment has {len(descriptions['linux-64']['packages'])} PyPI "
        f"package(s): {names}\n"
    )
    assert not (tmp_path / "linux-64.txt").exists()

    exported = run_client("export", req_id, "--format", "requirements.txt", "--platform",
                          "osx-arm64", "-o", "pinned.txt", cwd=tmp_path)  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    text = (tmp_path / "pinned.txt").read_text()
    for p in descriptions["osx-arm64"]["packages"]:
        assert f"{p['name']}=={p['version']} \\\n    --hash=sha256:{p['sha256']}\n" in text
