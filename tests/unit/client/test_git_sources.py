"""Git requirements packed by the client: the URL taken apart (no processes), then real git on a
repository the test makes (`file://`): rev → commit, subdirectory, errors with the URL masked,
and the packed sdist (real `uv build`, flit_core from the loopback index) named by content."""

from __future__ import annotations

import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from git_repo import ENV, commit, git, make_repo, write_project

from envd.client.git_sources import (
    ORIGIN_MEMBER,
    GitRequirement,
    check_out,
    git_requirement,
)
from envd.client.local_sources import (
    PackedSource,
    git_notes,
    has_local_sources,
    pack_local_sources,
)
from envd.errors import InvalidSpecError
from envd.ids import req_id
from envd.requirements_txt import requirement_text
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec, parse_source_url
from pypi_index import serve_index


def test_a_git_url_is_taken_apart_into_clone_url_rev_and_subdirectory() -> None:
    assert git_requirement("git+https://h.example/o/r.git@v1.2#subdirectory=pkgs/a&egg=a") == (
        GitRequirement("https://h.example/o/r.git", "v1.2", "pkgs/a")
    )
    assert git_requirement("git+file:///srv/r") == GitRequirement("file:///srv/r", None, None)
    # an `@` in the user info or an earlier segment is not a rev
    assert git_requirement("git+ssh://git@h.example/o/r.git") == (
        GitRequirement("ssh://git@h.example/o/r.git", None, None)
    )
    assert git_requirement("https://h.example/x-1.0.tar.gz") is None
    with pytest.raises(InvalidSpecError, match=r"not `git\+ftp`"):
        git_requirement("git+ftp://h.example/r.git")
    with pytest.raises(InvalidSpecError, match="starts with `-`"):
        git_requirement("git+https://h.example/r.git@--upload-pack=x")
    masked = GitRequirement("https://ada:s3cret@h.example/r.git", None, None).shown
    assert masked == "https://ada:***@h.example/r.git"


def test_packed_sources_are_named_for_people_and_scripts_with_logins_masked() -> None:
    named = GitRequirement("https://ada:s3cret@h.example/r.git", "v1", "pkgs/a").named
    assert named == "https://ada:***@h.example/r.git@v1#subdirectory=pkgs/a"
    git_source = PackedSource("a", "git+…", Path("/t/a-1.tar.gz"), "a-1.tar.gz", "ab" * 32, 9,
                              commit="c" * 40, named=named)  # fmt: skip
    local = PackedSource("b", Path("/src/b"), Path("/t/b-2.tar.gz"), "b-2.tar.gz", "cd" * 32, 9)
    assert git_notes((git_source, local)) == [
        f"packed a from {named} (commit {'c' * 40}) as envd-source://sha256/{'ab' * 32}/a-1.tar.gz"
    ]
    assert [s.to_json() for s in (git_source, local)] == [
        {"name": "a", "origin": f"git+{named}", "commit": "c" * 40, "sha256": "ab" * 32,
         "filename": "a-1.tar.gz"},
        {"name": "b", "origin": "/src/b", "commit": None, "sha256": "cd" * 32,
         "filename": "b-2.tar.gz"},
    ]  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def test_a_rev_names_a_tag_a_branch_or_a_commit(repo: Path, tmp_path: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "--quiet", "-b", "next")
    write_project(repo, "gitpkg", "2")
    second = commit(repo, "second")
    git(repo, "checkout", "--quiet", "main")
    url = repo.as_uri()
    (tmp_path / "s").mkdir()

    def out(rev: str | None, subdirectory: str | None = None) -> tuple[str, str]:
        got = check_out(GitRequirement(url, rev, subdirectory), "gitpkg", tmp_path / "s")
        return got.commit, (got.project / "src" / "gitpkg" / "__init__.py").read_text()

    assert out(None) == (first, "X = 1\n")  # HEAD: main
    assert out("v1") == (first, "X = 1\n")
    assert out("next") == (second, "X = 2\n")  # a branch of the remote
    assert out(second[:12]) == (second, "X = 2\n")
    assert out(second) == (second, "X = 2\n")
    sub = check_out(GitRequirement(url, "v1", "sub"), "subpkg", tmp_path / "s")
    assert (sub.project / "pyproject.toml").read_text().count('name = "subpkg"') == 1


def test_unknown_revs_subdirectories_and_clone_failures_are_named(
    repo: Path, tmp_path: Path
) -> None:
    url = repo.as_uri()
    with pytest.raises(InvalidSpecError) as info:
        check_out(GitRequirement(url, "v9", None), "gitpkg", tmp_path)
    assert info.value.message == (
        f"failed to pack `gitpkg` from `{url}`: the rev `v9` is not a branch, tag or commit "
        "of that repository"
    )
    with pytest.raises(InvalidSpecError, match=r"no subdirectory `\.\./repo` there"):
        check_out(GitRequirement(url, None, "../repo"), "gitpkg", tmp_path)
    # an unreachable server: git's stderr tail, the login masked, within the timeout
    secret = GitRequirement("http://ada:s3cret@127.0.0.1:9/r.git", None, None)
    with pytest.raises(InvalidSpecError) as info:
        check_out(secret, "gitpkg", tmp_path, timeout=30)
    text = info.value.message + (info.value.hint or "")
    assert "s3cret" not in text, text
    assert info.value.message.startswith(
        "failed to pack `gitpkg` from `http://ada:***@127.0.0.1:9/r.git`: `git clone` exited 128: "
    ), info.value.message
    assert "127.0.0.1" in info.value.message.split("exited 128: ", 1)[1]  # git's own words


def git_spec(*requirements: str) -> Spec:
    texts = [requirement_text(r, "test") for r in requirements]
    return normalize_spec(RawSpec(pypi=[RawDependency(t) for t in texts], python="3.11"))


@pytest.fixture
def backends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with serve_index(tmp_path / "index", build_backends=True) as index:
        monkeypatch.setenv("UV_DEFAULT_INDEX", index.url)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        yield


def packed(spec: Spec, scratch: Path) -> tuple[str, str, Path]:
    scratch.mkdir(parents=True)
    result = pack_local_sources(spec, scratch)
    (source,) = result.sources
    (dep,) = result.spec.pypi
    parsed = parse_source_url(dep.requirement.split(" @ ", 1)[1])
    assert parsed == (source.sha256, source.filename)
    return req_id(result.spec), source.sha256, source.path


@pytest.mark.usefixtures("backends")
def test_the_same_commit_packs_to_the_same_bytes_and_a_new_one_to_new(
    repo: Path, tmp_path: Path
) -> None:
    first = git(repo, "rev-parse", "HEAD")
    spec = git_spec(f"gitpkg @ git+{repo.as_uri()}@v1")
    assert has_local_sources(spec)
    one, sha, sdist = packed(spec, tmp_path / "a")
    assert sdist.name == "gitpkg-0.1.tar.gz"
    with tarfile.open(sdist) as archive:
        record = archive.extractfile(f"gitpkg-0.1/{ORIGIN_MEMBER}").read().decode()  # type: ignore[union-attr]
    assert record == f"url = {repo.as_uri()}\ncommit = {first}\n"
    assert packed(git_spec(f"gitpkg @ git+{repo.as_uri()}@{first}"), tmp_path / "b")[:2] == (
        one,
        sha,
    )  # the same commit by another rev: the same bytes
    # the tag moved to a new commit (even one with the same files): a new source, a new req_id
    git(repo, "commit", "--quiet", "--allow-empty", "-m", "moved")
    git(repo, "tag", "--force", "v1")
    moved, moved_sha, _ = packed(spec, tmp_path / "c")
    assert moved != one and moved_sha != sha
    # a subdirectory project, with extras and markers kept on the rewritten requirement
    sub = git_spec(f"subpkg[x] @ git+{repo.as_uri()}@v1#subdirectory=sub ; python_version>'3'")
    result = pack_local_sources(sub, tmp_path)
    (dep,) = result.spec.pypi
    assert dep.requirement.startswith("subpkg[x] @ envd-source://sha256/"), dep.requirement
    (source,) = result.sources  # what `spec`/`resolve` tell the user they packed
    assert source.commit == git(repo, "rev-parse", "HEAD")
    assert git_notes(result.sources) == [
        f"packed subpkg from {repo.as_uri()}@v1#subdirectory=sub (commit {source.commit}) as "
        f"envd-source://sha256/{source.sha256}/subpkg-0.1.tar.gz"
    ]
    assert dep.requirement.endswith('/subpkg-0.1.tar.gz ; python_version > "3"'), dep


def test_submodules_are_checked_out_recursively(repo: Path, tmp_path: Path) -> None:
    """The submodule is a `file://` repository: git refuses that transport for submodules
    unless told (`protocol.file.allow`), which the test's environment does, as a user would."""
    allow = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "protocol.file.allow",
             "GIT_CONFIG_VALUE_0": "always"}  # fmt: skip
    inner = make_repo(tmp_path / "inner")
    added = subprocess.run(
        ["git", "submodule", "add", "--quiet", inner.as_uri(), "vendor/inner"], cwd=repo,
        env={**ENV, **allow}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    top = commit(repo, "with a submodule")
    got = check_out(GitRequirement(repo.as_uri(), None, None), "gitpkg", tmp_path,
                    environ={**os.environ, **allow})  # fmt: skip
    assert got.commit == top
    assert (got.project / "vendor" / "inner" / "src" / "gitpkg" / "__init__.py").is_file()


def test_a_project_that_fails_to_pack_is_named_by_its_url_and_commit(
    repo: Path, tmp_path: Path
) -> None:
    pyproject = (repo / "pyproject.toml").read_text()
    broken = pyproject.replace('["flit_core>=3.4,<5"]', "[]").replace(
        '"flit_core.buildapi"', '"envd_missing_backend"'
    )
    (repo / "pyproject.toml").write_text(broken)
    top = commit(repo, "broken")
    with pytest.raises(InvalidSpecError) as info:
        pack_local_sources(git_spec(f"gitpkg @ git+{repo.as_uri()}"), tmp_path)
    assert info.value.message.startswith(
        f"failed to pack `gitpkg` from `{repo.as_uri()}@{top}` into an sdist (`uv build --sdist` "
        "exited 2): "
    ), info.value.message
    assert "/git-" not in info.value.message  # not the temp checkout's path


@pytest.mark.usefixtures("backends")
def test_pre_deploy_packs_a_git_requirement_as_resolve_does(repo: Path, tmp_path: Path) -> None:
    """A manifest step naming a git requirement asks for the req_id `spec`/`resolve` compute
    (the clone packed, its sdist among the sources to upload); an unknown rev fails that step
    alone, naming the rev."""
    from contextlib import ExitStack

    from envd.client.deploy_hook import group_environments
    from envd.client.local_sources import packed_sources
    from envd.client.manifest import parse_manifest

    requirement = f"gitpkg @ git+{repo.as_uri()}@v1"
    manifest = parse_manifest({"version": 1, "steps": [
        {"name": "ok", "platforms": ["linux-64"], "environment": {"pypi": [requirement]}},
        {"name": "norev", "platforms": ["linux-64"],
         "environment": {"pypi": [f"gitpkg @ git+{repo.as_uri()}@v9"]}},
    ]}, base=tmp_path)  # fmt: skip
    with ExitStack() as stack:
        environments, errors, keys = group_environments(
            manifest, lambda _: None,
            lambda spec: stack.enter_context(packed_sources(spec, tmp_path / "scratch")),
        )  # fmt: skip
        (environment,) = environments
        commit = git(repo, "rev-parse", "HEAD")
        assert [s.origin for s in environment.sources] == [f"git+{repo.as_uri()}@{commit}"]
    from envd.spec_input import load_spec

    assert keys["ok"] == packed(load_spec(pypi=[requirement]).spec, tmp_path / "resolve")[0]
    assert list(errors) == ["norev"] and "`v9`" in errors["norev"].message
