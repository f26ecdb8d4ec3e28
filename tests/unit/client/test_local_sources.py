"""Local sources: read from requirement text, packed deterministically, named by content in the
spec, fetched back by agents only when the bytes match (no processes: files given as they are,
sdists made with tarfile)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from envd.agents.source_inputs import fetch_sources, source_of
from envd.client.local_sources import has_local_sources, normalize_sdist, pack_local_sources
from envd.errors import ArchiveIntegrityError, InvalidSpecError, StoreError
from envd.ids import req_id
from envd.requirements_txt import read_requirements_file, requirement_text
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec, parse_source_url, source_url
from envd.spec_files import read_environment_file
from envd.store.local import LocalStore


def write_sdist(path: Path, files: dict[str, bytes], mtime: int, reverse: bool = False) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name in sorted(files, reverse=reverse):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.uid, info.uname = len(files[name]), mtime, 1000, "ada"
            archive.addfile(info, io.BytesIO(files[name]))
    return path


def sdist_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers()}  # type: ignore[union-attr]


FILES = {"mypkg-0.1/PKG-INFO": b"Name: mypkg\nVersion: 0.1\n", "mypkg-0.1/mypkg.py": b"X = 1\n"}


def test_normalized_sdists_depend_on_their_files_only(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = normalize_sdist(write_sdist(tmp_path / "a" / "mypkg-0.1.tar.gz", FILES, 1_700_000_000))
    second = normalize_sdist(
        write_sdist(tmp_path / "b" / "mypkg-0.1.tar.gz", FILES, 1_800_000_000, reverse=True)
    )
    assert first.read_bytes() == second.read_bytes()
    assert sdist_members(first) == FILES
    changed = {**FILES, "mypkg-0.1/mypkg.py": b"X = 2\n"}
    third = normalize_sdist(write_sdist(tmp_path / "mypkg-0.1.tar.gz", changed, 1_700_000_000))
    assert third.read_bytes() != first.read_bytes()


def local_spec(*requirements: str, base: Path) -> Spec:
    texts = [requirement_text(r, "test", base) for r in requirements]
    return normalize_spec(RawSpec(pypi=[RawDependency(t) for t in texts], python="3.11"))


def test_local_paths_become_absolute_file_urls_named_by_the_project(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "My_Pkg"\nversion = "0.1"\n')
    archive = write_sdist(tmp_path / "other_pkg-2.0.tar.gz", FILES, 0)
    assert requirement_text("./proj", "x", tmp_path) == f"My_Pkg @ {project.as_uri()}"
    assert requirement_text("other_pkg-2.0.tar.gz", "x", tmp_path) == "other_pkg-2.0.tar.gz"
    assert requirement_text(str(archive), "x") == f"other-pkg @ {archive.as_uri()}"
    assert requirement_text(archive.as_uri(), "x") == f"other-pkg @ {archive.as_uri()}"
    named = requirement_text('mine[b,a] @ ./proj ; sys_platform == "linux"', "x", tmp_path)
    assert named == f'mine[a,b] @ {project.as_uri()} ; sys_platform == "linux"'
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("./proj\n")
    (dep,) = read_requirements_file(requirements).dependencies
    assert dep.text == f"My_Pkg @ {project.as_uri()}"
    environment = tmp_path / "environment.yml"
    environment.write_text("dependencies:\n  - python=3.11\n  - pip:\n    - ./proj\n")
    pip = read_environment_file(environment).spec.pypi
    assert [d.text for d in pip] == [f"My_Pkg @ {project.as_uri()}"]


def test_bad_local_requirements_are_named(tmp_path: Path) -> None:
    (tmp_path / "noname").mkdir()
    with pytest.raises(InvalidSpecError) as unnamed:
        requirement_text("./noname", "req.txt:3", tmp_path)
    assert unnamed.value.message == (
        "failed to parse PyPI requirement `./noname` at req.txt:3: cannot tell which package it is"
    )
    assert unnamed.value.hint == "name it: `NAME @ ./noname`"
    with pytest.raises(InvalidSpecError) as missing:
        requirement_text("./gone", "req.txt:4", tmp_path)
    assert missing.value.message == (
        f"failed to read local requirement `./gone` at req.txt:4: no such directory or file "
        f"`{tmp_path / 'gone'}`"
    )
    with pytest.raises(InvalidSpecError, match="`file://` URLs name files of this machine only"):
        requirement_text("file://otherhost/x.whl", "x")
    editable = tmp_path / "editable.txt"
    editable.write_text("-e ./noname\n")
    with pytest.raises(InvalidSpecError) as refused:
        read_requirements_file(editable)
    assert refused.value.hint is not None and "drop `-e`" in refused.value.hint
    with pytest.raises(InvalidSpecError, match="must be an absolute `file://` URL"):
        normalize_spec(RawSpec(pypi=[RawDependency("x @ ./x")]))
    with pytest.raises(InvalidSpecError, match="expected `envd-source://sha256/<64 hex"):
        normalize_spec(RawSpec(pypi=[RawDependency("x @ envd-source://sha256/abc/x.whl")]))


def test_packing_names_sources_by_content_so_the_req_id_follows_it(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two, tmp_path / "scratch"):
        folder.mkdir()
    wheel = one / "mypkg-0.1-py3-none-any.whl"
    wheel.write_bytes(b"wheel bytes")
    (two / wheel.name).write_bytes(b"wheel bytes")
    spec = normalize_spec(
        RawSpec(
            pypi=[RawDependency(f"mypkg[cli] @ {wheel.as_uri()} ; python_version >= '3'"),
                  RawDependency("requests")],
            python="3.11",
        )
    )  # fmt: skip
    assert has_local_sources(spec)
    packed = pack_local_sources(spec, tmp_path / "scratch")
    sha = hashlib.sha256(b"wheel bytes").hexdigest()
    assert [d.requirement for d in packed.spec.pypi] == [
        f'mypkg[cli] @ envd-source://sha256/{sha}/{wheel.name} ; python_version >= "3"',
        "requests",
    ]
    (source,) = packed.sources
    assert (source.sha256, source.filename, source.key) == (
        sha, wheel.name, f"pkgs/{sha}/{wheel.name}",
    )  # fmt: skip
    assert not has_local_sources(packed.spec)
    moved = spec_for(two / wheel.name)
    assert req_id(pack_local_sources(moved, tmp_path / "scratch").spec) == req_id(
        pack_local_sources(spec_for(wheel), tmp_path / "scratch").spec
    )
    assert req_id(moved) != req_id(spec_for(wheel))  # the path alone would be in the id
    (two / wheel.name).write_bytes(b"other wheel bytes")
    assert req_id(pack_local_sources(moved, tmp_path / "scratch").spec) != req_id(
        pack_local_sources(spec_for(wheel), tmp_path / "scratch").spec
    )


def spec_for(wheel: Path) -> Spec:
    return normalize_spec(RawSpec(pypi=[RawDependency(f"mypkg @ {wheel.as_uri()}")]))


def test_source_urls_round_trip_and_agents_fetch_only_matching_bytes(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    data = b"sdist bytes"
    sha = hashlib.sha256(data).hexdigest()
    url = source_url(sha, "my pkg-0.1.tar.gz")
    assert url == f"envd-source://sha256/{sha}/my%20pkg-0.1.tar.gz"
    assert parse_source_url(url) == (sha, "my pkg-0.1.tar.gz")
    assert parse_source_url("https://x.org/a.whl") is None
    text = f"mypkg @ envd-source://sha256/{sha}/mypkg-0.1.tar.gz"
    with pytest.raises(StoreError, match="is not in store"):
        fetch_sources([text], tmp_path / "work", store)
    store.put_if_absent(f"pkgs/{sha}/mypkg-0.1.tar.gz", data)
    resolved = fetch_sources(["requests", text], tmp_path / "work", store)
    path = tmp_path / "work" / "sources" / sha / "mypkg-0.1.tar.gz"
    assert resolved == ["requests", f"mypkg @ {path.as_uri()}"]
    assert path.read_bytes() == data
    assert source_of(str(path)) == (sha, "mypkg-0.1.tar.gz")
    assert source_of(str(tmp_path / "x.whl")) is None
    forged = hashlib.sha256(b"other").hexdigest()
    store.put_if_absent(f"pkgs/{forged}/mypkg-0.1.tar.gz", data)
    with pytest.raises(ArchiveIntegrityError) as corrupt:
        fetch_sources([text.replace(sha, forged)], tmp_path / "work2", store)
    assert corrupt.value.message == (
        f"failed to verify local source `mypkg-0.1.tar.gz` from the store: sha256 is `{sha}`, "
        f"the spec names `{forged}`"
    )
    assert not os.listdir(tmp_path / "work2" / "sources" / forged)


def test_the_client_sdist_build_sees_its_index_settings_and_no_secrets(tmp_path: Path) -> None:
    from envd.client.local_sources import sdist_environment

    home = tmp_path / "user"
    home.mkdir()
    (home / ".netrc").write_text("machine idx.example login u password p\n")
    parent = {
        "HOME": str(home), "PATH": "/usr/bin", "UV_DEFAULT_INDEX": "http://idx.example/simple",
        "AWS_SECRET_ACCESS_KEY": "s3-secret", "ENVD_CHANNEL_TOKEN": "h=tok",
        "UV_PRERELEASE": "allow", "PIP_INDEX_URL": "http://other/simple",
    }  # fmt: skip
    env = sdist_environment(parent, tmp_path / "scratch-home")
    assert env["UV_DEFAULT_INDEX"] == "http://idx.example/simple"
    assert env["NETRC"] == str(home / ".netrc")  # the user's own login for a private index
    assert env["UV_CACHE_DIR"] == str(home / ".cache" / "uv")  # the user's uv cache
    assert env["HOME"] == str(tmp_path / "scratch-home") and env["UV_NO_CONFIG"] == "1"
    for name in ("AWS_SECRET_ACCESS_KEY", "ENVD_CHANNEL_TOKEN", "UV_PRERELEASE", "PIP_INDEX_URL"):
        assert name not in env
    chosen = sdist_environment({**parent, "NETRC": "/etc/mine", "XDG_CACHE_HOME": "/c"}, home)
    assert (chosen["NETRC"], chosen["UV_CACHE_DIR"]) == ("/etc/mine", "/c/uv")


def test_a_failing_pack_quotes_the_build_log_with_logins_masked(tmp_path: Path) -> None:
    """The `uv build --sdist` log in the error goes to the user's terminal and CI logs: an index
    login in it (the backend or uv printing a URL from `UV_INDEX_URL`) is masked, as git's
    log is when a git source fails to pack. A real in-tree backend fails, printing one."""
    from envd.client.local_sources import pack_source

    project = tmp_path / "failing"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
        '[project]\nname = "failing"\nversion = "1.0"\n'
    )
    (project / "backend.py").write_text(
        "def build_sdist(sdist_directory, config_settings=None):\n"
        "    raise RuntimeError('cannot reach https://ada:s3cret@h.example/simple')\n"
    )
    (tmp_path / "scratch").mkdir()
    with pytest.raises(InvalidSpecError) as failed:
        pack_source("failing", project, tmp_path / "scratch")
    assert "https://ada:***@h.example/simple" in failed.value.message
    assert "s3cret" not in failed.value.message
