"""A local project in a pypi-only request, as a user sends one: `envd-client` packs it into an
sdist (real `uv build`, the project's `uv_build` backend), uploads it to the store, and the
agent of the embedded default resolves it from there. The req_id follows the content."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_cli import one_json, run_client

from harness import Cluster
from pypi_index import serve_index

pytestmark = pytest.mark.e2e
PYPROJECT = """[project]
name = "mypkg"
version = "0.1"
dependencies = ["envd-app==1.0"]

[build-system]
requires = ["uv_build>=0.8,<0.14"]
build-backend = "uv_build"
"""
SOURCE = re.compile(r"^mypkg @ envd-source://sha256/([0-9a-f]{64})/mypkg-0\.1\.tar\.gz$")


def write_project(folder: Path) -> Path:
    (folder / "src" / "mypkg").mkdir(parents=True)
    (folder / "pyproject.toml").write_text(PYPROJECT)
    (folder / "src" / "mypkg" / "__init__.py").write_text("X = 1\n")
    return folder


def spec_of(tmp_path: Path, requirements: Path) -> tuple[str, str]:
    out = run_client("spec", "-r", str(requirements), "--python", "3.11", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    document = one_json(out)
    (source,) = [d["requirement"] for d in document["canonical"]["pypi"] if d["name"] == "mypkg"]
    match = SOURCE.match(source)
    assert match, source
    return document["req_id"], match.group(1)


def test_a_local_project_is_packed_uploaded_and_resolved_by_content(tmp_path: Path) -> None:
    project = write_project(tmp_path / "work" / "mypkg")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    with serve_index(tmp_path / "index") as index:
        requirements = tmp_path / "work" / "requirements.txt"
        requirements.write_text(f"-i {index.url}\n./mypkg\n")
        req_id, sha = spec_of(tmp_path, requirements)
        out = run_client("resolve", "-r", str(requirements), "--python", "3.11", "--arch",
                         "linux-64", "--json", cwd=tmp_path, env=env)  # fmt: skip
    document = one_json(out)
    assert document["req_id"] == req_id
    stored = tmp_path / "home" / "store" / "pkgs" / sha / "mypkg-0.1.tar.gz"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha  # uploaded, by content
    (result,) = document["environments"]
    if result["outcome"] == "failed":
        # this branch resolves up to the build: the agent read the sdist from the store, uv
        # resolved it with its dependency from the index, and only the wheel build is missing
        assert out.returncode == 3
        assert "package `mypkg 0.1` (no wheel for" in result["error"]["message"], result
    else:  # with native builds: built on the linux-64 agent
        assert result["outcome"] == "resolved", result
        assert "mypkg" in {p["name"] for p in result["packages"]}
    assert not (project / "dist").exists()  # the sdist went to a temp folder, not the project

    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "work", moved)
    assert spec_of(tmp_path, moved / "requirements.txt") == (req_id, sha)  # the path is no part
    (moved / "mypkg" / "src" / "mypkg" / "__init__.py").write_text("X = 2\n")
    changed_id, changed_sha = spec_of(tmp_path, moved / "requirements.txt")
    assert changed_id != req_id and changed_sha != sha


def test_a_project_that_fails_to_pack_shows_the_build_log(tmp_path: Path) -> None:
    project = write_project(tmp_path / "broken")
    broken = PYPROJECT.replace('["uv_build>=0.8,<0.14"]', "[]").replace(
        '"uv_build"', '"envd_missing_backend"'
    )
    (project / "pyproject.toml").write_text(broken)
    out = run_client("spec", "--pypi", "./broken", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith(
        f"error: failed to pack local project `{project}` into an sdist (`uv build --sdist` "
        "exited 2): "
    ), out.stderr
    assert "ModuleNotFoundError: No module named 'envd_missing_backend'" in out.stderr  # the log


@contextmanager
def project_on_a_cluster(cluster: Cluster, tmp_path: Path) -> Iterator[Path]:
    """A daemon and a linux-64 agent, a loopback index, and `work/requirements.txt` naming
    the local project `./mypkg` (and the index); yields that file's path."""
    write_project(tmp_path / "work" / "mypkg")
    cluster.start_daemon()
    cluster.start_agent("linux", ["linux-64"])
    with serve_index(tmp_path / "index") as index:
        requirements = tmp_path / "work" / "requirements.txt"
        requirements.write_text(f"-i {index.url}\n./mypkg\n")
        yield requirements


def test_a_remote_coordinators_agent_reads_the_source_the_client_uploaded(
    cluster: Cluster, tmp_path: Path
) -> None:
    with project_on_a_cluster(cluster, tmp_path) as requirements:
        _, sha = spec_of(tmp_path, requirements)
        out = run_client("--coordinator", cluster.address, "resolve", "-r", str(requirements),
                         "--python", "3.11", "--arch", "linux-64", "--json", cwd=tmp_path)  # fmt: skip
    stored = cluster.root / "store" / "pkgs" / sha / "mypkg-0.1.tar.gz"  # the daemon's store
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha, out.stderr
    (result,) = one_json(out)["environments"]
    if result["outcome"] == "failed":  # as above: resolved up to the missing native build
        assert "package `mypkg 0.1` (no wheel for" in result["error"]["message"], result
    else:
        assert result["outcome"] == "resolved", result


def test_pre_deploy_packs_and_uploads_a_local_project_as_resolve_does(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A manifest step whose requirements name a local project asks for the req_id `spec`
    and `resolve` compute (the packed source's hash, not the path), and the agent reads the
    source from the store the client uploaded it to."""
    with project_on_a_cluster(cluster, tmp_path) as requirements:
        req_id, sha = spec_of(tmp_path, requirements)
        manifest = tmp_path / "work" / "manifest.yaml"
        manifest.write_text(json.dumps({"version": 1, "steps": [{
            "name": "app", "platforms": ["linux-64"],
            "environment": {"requirements": ["requirements.txt"], "python": "3.11"},
        }]}))  # fmt: skip
        output = tmp_path / "result.json"
        out = run_client("--coordinator", cluster.address, "pre-deploy", str(manifest),
                         "--output", str(output), "--no-archives", cwd=tmp_path)  # fmt: skip
    row = json.loads(output.read_text())["steps"]["app"]["platforms"]["linux-64"]
    assert row["req_id"] == req_id, (row, out.stderr)
    stored = cluster.root / "store" / "pkgs" / sha / "mypkg-0.1.tar.gz"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha, out.stderr
    # the outcome is the native build's (a local source's build is the "localbuild" work)
    assert row["outcome"] in ("resolved", "failed"), row
