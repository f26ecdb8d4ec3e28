"""A git requirement in a pypi-only request, as a user sends one: `envd-client` clones the
repository (a real bare repo the test serves over loopback with git's dumb HTTP protocol),
checks out the tag, packs the project into an sdist (real `uv build`, flit_core from the
loopback index) and uploads it; the agent of the embedded default builds it natively from
those bytes and never sees the git URL. A moved tag is a new source: a new req_id and build."""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import zipfile
from pathlib import Path

import pytest
from git_repo import commit, git, make_repo, publish, serve_dumb_http, write_project
from test_cli import one_json, run_client

from envd.store.layout import description_key
from pypi_index import serve_index

pytestmark = pytest.mark.e2e
SOURCE = re.compile(r"^gitpkg @ envd-source://sha256/([0-9a-f]{64})/gitpkg-0\.1\.tar\.gz$")
WHEEL = "gitpkg-0.1-py3-none-any.whl"


def test_a_git_tag_is_packed_by_the_client_and_built_natively(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "work" / "repo")
    served = tmp_path / "served"
    publish(repo, served / "repo.git")
    store = tmp_path / "home" / "store"
    with serve_index(tmp_path / "index", build_backends=True) as index, \
            serve_dumb_http(served) as base:  # fmt: skip
        env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "UV_DEFAULT_INDEX": index.url}
        requirements = tmp_path / "requirements.txt"
        requirements.write_text(f"-i {index.url}\ngitpkg @ git+{base}/repo.git@v1\n")
        resolve = ["resolve", "-r", str(requirements), "--python", "3.11", "--arch", "linux-64",
                   "--json"]  # fmt: skip

        def spec() -> tuple[str, str]:
            out = run_client("spec", "-r", str(requirements), "--python", "3.11", "--json",
                             cwd=tmp_path, env=env)  # fmt: skip
            assert out.returncode == 0, out.stderr
            document = one_json(out)
            assert "git+" not in json.dumps(document["canonical"])  # only the content address
            (requirement,) = [d["requirement"] for d in document["canonical"]["pypi"]]
            match = SOURCE.match(requirement)
            assert match, requirement
            head = git(repo, "rev-parse", "HEAD")
            assert document["sources"] == [
                {"name": "gitpkg", "origin": f"git+{base}/repo.git@v1", "commit": head,
                 "sha256": match.group(1), "filename": "gitpkg-0.1.tar.gz"}
            ]  # fmt: skip
            assert (f"packed gitpkg from {base}/repo.git@v1 (commit {head}) as "
                    f"{requirement.partition(' @ ')[2]}\n") in out.stderr  # fmt: skip
            return document["req_id"], match.group(1)

        def built(sha: str) -> tuple[str, dict[str, object]]:
            out = run_client(*resolve, cwd=tmp_path, env=env)
            document = one_json(out)
            assert f"/repo.git@v1 (commit {git(repo, 'rev-parse', 'HEAD')}) as " in out.stderr
            (result,) = document["environments"]
            assert result["outcome"] == "resolved", (result, out.stderr)
            key = description_key(document["req_id"], "linux-64", result["full_id"])
            description = json.loads((store / key).read_text())
            (package,) = description["packages"]
            assert package["filename"] == WHEEL
            assert package["built"]["source"] == f"envd-source://sha256/{sha}/gitpkg-0.1.tar.gz"
            assert package["built"]["sha256"] == sha
            assert "git+" not in json.dumps(description)  # the agent saw bytes, not the URL
            stored = store / "pkgs" / sha / "gitpkg-0.1.tar.gz"
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha  # uploaded by content
            return document["req_id"], package

        req_id, sha = spec()
        first_id, first = built(sha)
        assert first_id == req_id

        # the tag moves to a new commit: a new sdist, a new req_id, a new build of the new code
        write_project(repo, "gitpkg", "2")
        moved_commit = commit(repo, "second")
        git(repo, "tag", "--force", "v1")
        publish(repo, served / "repo.git")
        moved_id, moved_sha = spec()
        assert (moved_id, moved_sha) != (req_id, sha)
        second_id, second = built(moved_sha)
        quiet = run_client(*resolve[:-1], "-q", cwd=tmp_path, env=env)  # a hit: no line
        assert quiet.returncode == 0 and "packed" not in quiet.stderr, quiet.stderr
    assert second_id == moved_id and second["sha256"] != first["sha256"]
    with zipfile.ZipFile(store / "pkgs" / str(second["sha256"]) / WHEEL) as wheel:
        assert wheel.read("gitpkg/__init__.py") == b"X = 2\n"
    with tarfile.open(store / "pkgs" / moved_sha / "gitpkg-0.1.tar.gz") as sdist:
        record = sdist.extractfile("gitpkg-0.1/ENVD-GIT-SOURCE").read().decode()  # type: ignore[union-attr]
    assert record == f"url = {base}/repo.git\ncommit = {moved_commit}\n"
