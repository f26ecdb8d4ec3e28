"""A local project in a pypi-only request, as a user sends one: `envd-client` packs it into an
sdist (real `uv build`, the project's flit_core backend from the loopback index), uploads it to
the store, and the agent of the embedded default resolves it from there and builds its wheel
natively; `create` installs that wheel. The req_id, and so the build, follow the content."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from test_cli import one_json, run_client

from envd.store.layout import description_key
from harness import Cluster
from pypi_index import serve_index

pytestmark = pytest.mark.e2e
PYPROJECT = """[project]
name = "mypkg"
version = "0.1"
description = "a local project"
requires-python = ">=3.9"
dependencies = ["envd-app==1.0"]

[build-system]
requires = ["flit_core>=3.4,<5"]
build-backend = "flit_core.buildapi"
"""
SOURCE = re.compile(r"^mypkg @ envd-source://sha256/([0-9a-f]{64})/mypkg-0\.1\.tar\.gz$")
WHEEL = "mypkg-0.1-py3-none-any.whl"


def write_project(folder: Path) -> Path:
    (folder / "src" / "mypkg").mkdir(parents=True)
    (folder / "pyproject.toml").write_text(PYPROJECT)
    (folder / "src" / "mypkg" / "__init__.py").write_text("X = 1\n")
    return folder


def spec_of(tmp_path: Path, requirements: Path, env: dict[str, str]) -> tuple[str, str]:
    out = run_client("spec", "-r", str(requirements), "--python", "3.11", "--json", cwd=tmp_path,
                     env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    document = one_json(out)
    (source,) = [d["requirement"] for d in document["canonical"]["pypi"] if d["name"] == "mypkg"]
    match = SOURCE.match(source)
    assert match, source
    return document["req_id"], match.group(1)


def built_mypkg(out: subprocess.CompletedProcess[str], store: Path, sha: str) -> dict[str, Any]:
    """The resolved environment's `mypkg` (as its stored description names it): built from
    the packed sdist, its wheel and its record in the store."""
    document = one_json(out)
    (result,) = document["environments"]
    assert result["outcome"] == "resolved", (result, out.stderr)
    key = description_key(document["req_id"], "linux-64", result["full_id"])
    description = json.loads((store / key).read_text())
    (package,) = [p for p in description["packages"] if p["name"] == "mypkg"]
    assert package["filename"] == WHEEL
    assert package["built"]["sha256"] == sha
    assert package["built"]["source"] == f"envd-source://sha256/{sha}/mypkg-0.1.tar.gz"
    assert package["built"]["platform"] == "linux-64"
    wheel = store / "pkgs" / package["sha256"] / WHEEL
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == package["sha256"]
    assert (store / "built" / sha / "cp311" / "linux-64.json").is_file()
    return dict(package)


def test_a_local_project_is_packed_built_natively_and_created(tmp_path: Path) -> None:
    project = write_project(tmp_path / "work" / "mypkg")
    store = tmp_path / "home" / "store"
    with serve_index(tmp_path / "index", build_backends=True) as index:
        env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "UV_DEFAULT_INDEX": index.url}
        requirements = tmp_path / "work" / "requirements.txt"
        requirements.write_text(f"-i {index.url}\n./mypkg\n")
        req_id, sha = spec_of(tmp_path, requirements, env)
        resolve = ["resolve", "-r", str(requirements), "--python", "3.11", "--arch", "linux-64",
                   "--json"]  # fmt: skip
        out = run_client(*resolve, cwd=tmp_path, env=env)
        assert one_json(out)["req_id"] == req_id
        stored = store / "pkgs" / sha / "mypkg-0.1.tar.gz"
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha  # uploaded, by content
        first = built_mypkg(out, store, sha)
        assert first["built"]["agent"], first  # the embedded default's agent built it
        assert not (project / "dist").exists()  # the sdist went to a temp folder

        moved = tmp_path / "elsewhere"
        shutil.copytree(tmp_path / "work", moved)
        assert spec_of(tmp_path, moved / "requirements.txt", env) == (req_id, sha)  # no path
        # a changed file: a new sdist, a new req_id, a new build (from the new bytes)
        (project / "src" / "mypkg" / "__init__.py").write_text("X = 2\n")
        changed = run_client(*resolve, cwd=tmp_path, env=env)
        changed_id = one_json(changed)["req_id"]
        (changed_sha,) = [p for p in (store / "built").iterdir() if p.name != sha]
        second = built_mypkg(changed, store, changed_sha.name)
    assert changed_id != req_id and second["sha256"] != first["sha256"]
    with zipfile.ZipFile(store / "pkgs" / second["sha256"] / WHEEL) as wheel:
        assert wheel.read("mypkg/__init__.py") == b"X = 2\n"

    # the index is gone: the first environment is created from the store alone
    prefix = tmp_path / "venv"
    created = run_client("create", req_id, "--arch", "linux-64", "--prefix", str(prefix),
                         "--json", cwd=tmp_path, env=env)  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert one_json(created)["packages"] == ["envd_app-1.0-py3-none-any.whl", WHEEL]
    imported = subprocess.run([str(prefix / "bin" / "python"), "-c", "import mypkg; print(mypkg.X)"],
                              capture_output=True, text=True, check=False)  # fmt: skip
    assert imported.stdout == "1\n", imported.stderr


def test_a_project_that_fails_to_pack_shows_the_build_log(tmp_path: Path) -> None:
    project = write_project(tmp_path / "broken")
    broken = PYPROJECT.replace('["flit_core>=3.4,<5"]', "[]").replace(
        '"flit_core.buildapi"', '"envd_missing_backend"'
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
def project_on_a_cluster(cluster: Cluster, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A daemon with one linux-64 agent, the local project `mypkg` and the loopback index
    (with the build backends), for a client that runs in `tmp_path`."""
    write_project(tmp_path / "work" / "mypkg")
    cluster.start_daemon()
    cluster.start_agent("linux", ["linux-64"])
    with serve_index(tmp_path / "index", build_backends=True) as index:
        requirements = tmp_path / "work" / "requirements.txt"
        requirements.write_text(f"-i {index.url}\n./mypkg\n")
        yield requirements, {"UV_DEFAULT_INDEX": index.url}


def test_a_remote_coordinators_agent_reads_the_source_the_client_uploaded(
    cluster: Cluster, tmp_path: Path
) -> None:
    with project_on_a_cluster(cluster, tmp_path) as (requirements, env):
        _, sha = spec_of(tmp_path, requirements, env)
        out = run_client("--coordinator", cluster.address, "resolve", "-r", str(requirements),
                         "--python", "3.11", "--arch", "linux-64", "--json", cwd=tmp_path,
                         env=env)  # fmt: skip
    store = cluster.root / "store"  # the daemon's
    stored = store / "pkgs" / sha / "mypkg-0.1.tar.gz"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha, out.stderr
    assert built_mypkg(out, store, sha)["built"]["agent"] == "linux"


def test_pre_deploy_packs_and_uploads_a_local_project_as_resolve_does(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A manifest step whose requirements name a local project asks for the req_id `spec`
    and `resolve` compute (the packed source's hash, not the path), and the agent reads the
    source from the store the client uploaded it to and builds it."""
    with project_on_a_cluster(cluster, tmp_path) as (requirements, env):
        req_id, sha = spec_of(tmp_path, requirements, env)
        manifest = tmp_path / "work" / "manifest.yaml"
        manifest.write_text(json.dumps({"version": 1, "steps": [{
            "name": "app", "platforms": ["linux-64"],
            "environment": {"requirements": ["requirements.txt"], "python": "3.11"},
        }]}))  # fmt: skip
        output = tmp_path / "result.json"
        out = run_client("--coordinator", cluster.address, "pre-deploy", str(manifest),
                         "--output", str(output), "--no-archives", cwd=tmp_path,
                         env=env)  # fmt: skip
    row = json.loads(output.read_text())["steps"]["app"]["platforms"]["linux-64"]
    assert row["req_id"] == req_id, (row, out.stderr)
    stored = cluster.root / "store" / "pkgs" / sha / "mypkg-0.1.tar.gz"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha, out.stderr
    assert row["outcome"] == "resolved", (row, out.stderr)
