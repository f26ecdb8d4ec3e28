"""Lock readers on real lock files: conda-lock (checked against conda-lock's own parser),
pixi.lock (py-rattler) and `@EXPLICIT`; bad entries are refused naming the file and entry."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from envd.client.lock_readers import LockFormat, read_lock
from envd.errors import InvalidLockError
from harness import ROOT

LOCKS = ROOT / "tests" / "fixtures" / "locks"
CONDA_LOCK = LOCKS / "conda-lock" / "test-install-with-pip-deps" / "conda-lock.yml"
PIXI = LOCKS / "pixi" / "geos-rs" / "pixi.lock"
EXPLICIT = LOCKS / "explicit" / "xtensor_linux-64.txt"


def test_conda_lock_matches_conda_locks_own_parser() -> None:
    with warnings.catch_warnings():
        # conda-lock (a test-only reference) warns about its own deprecated imports on import.
        warnings.simplefilter("ignore")
        from conda_lock.lockfile import parse_conda_lock_file

    reference = parse_conda_lock_file(CONDA_LOCK)
    lock = read_lock(CONDA_LOCK)
    assert lock.format is LockFormat.CONDA_LOCK
    assert lock.channels == ("conda-forge",)
    expected = {
        (p.platform, "pypi" if p.manager == "pip" else "conda", p.name, p.version, p.url,
         p.hash.sha256, p.hash.md5)
        for p in reference.package
    }  # fmt: skip
    ours = {
        (lp.platform, p.kind, p.name, p.version, p.url, p.sha256, p.md5)
        for lp in lock.platforms
        for p in lp.packages
    }
    assert ours == expected
    requests = next(p for p in lock.packages_for("linux-64") or () if p.name == "requests")
    assert (requests.kind, requests.channel, requests.build) == (
        "pypi", "https://files.pythonhosted.org", "")  # fmt: skip
    assert "urllib3>=1.21.1,<3" in requests.depends
    python = next(p for p in lock.packages_for("linux-aarch64") or () if p.name == "python")
    assert (python.subdir, python.channel) == (
        "linux-aarch64", "https://conda.anaconda.org/conda-forge")  # fmt: skip
    assert python.build and python.filename.startswith("python-3.12.0-")


def test_conda_lock_matches_py_rattlers_reading_of_it() -> None:
    from rattler import CondaLockedBinaryPackage, LockFile, PypiLockedPackage

    env = LockFile.from_path(CONDA_LOCK).default_environment()
    assert env is not None
    lock = read_lock(CONDA_LOCK)
    for platform in env.platforms():
        theirs = set()
        for package in env.packages(platform) or []:
            if isinstance(package, PypiLockedPackage):
                assert package.hashes is not None
                sha256 = package.hashes.sha256
                theirs.add((str(package.location), sha256.hex() if sha256 else ""))
            else:
                assert isinstance(package, CondaLockedBinaryPackage)
                record = package.repo_data_record()
                theirs.add((str(record.url), record.sha256.hex() if record.sha256 else ""))
        ours = {(p.url, p.sha256) for p in lock.packages_for(str(platform)) or ()}
        assert ours == theirs


def test_pixi_lock_through_py_rattler() -> None:
    from rattler import LockFile

    lock = read_lock(PIXI)
    assert lock.format is LockFormat.PIXI
    assert lock.channels == ("https://conda.anaconda.org/conda-forge/",)
    env = LockFile.from_path(PIXI).default_environment()
    assert env is not None
    for platform in env.platforms():
        records = env.conda_repodata_records_for_platform(platform) or []
        ours = lock.packages_for(str(platform)) or ()
        assert {(p.url, p.sha256) for p in ours} == {
            (str(r.url), r.sha256.hex() if r.sha256 else "") for r in records
        }
    geos = next(p for p in lock.packages_for("osx-arm64") or () if p.name == "geos")
    assert (geos.version, geos.build, geos.subdir) == ("3.13.1", "hc9a1286_0", "osx-arm64")
    assert geos.depends  # the lock's dependencies travel with the package


def test_explicit_file_has_md5s_and_its_platform_line() -> None:
    lock = read_lock(EXPLICIT)
    assert lock.format is LockFormat.EXPLICIT
    (only,) = lock.platforms
    assert only.platform == "linux-64" and len(only.packages) == 7
    xtensor = next(p for p in only.packages if p.name == "xtensor")
    assert (xtensor.version, xtensor.build, xtensor.sha256, xtensor.md5) == (
        "0.21.8", "hc9558a2_0", "", "1030174db5c183f3afb4181a0a02873d")  # fmt: skip


def test_explicit_platform_from_flag_or_refused(tmp_path: Path) -> None:
    bare = tmp_path / "env.txt"
    text = EXPLICIT.read_text().replace("# platform: linux-64\n", "")
    bare.write_text(text)
    with pytest.raises(InvalidLockError, match=r"has no `# platform:` line"):
        read_lock(bare)
    assert [lp.platform for lp in read_lock(bare, platform="linux-64").platforms] == ["linux-64"]
    with pytest.raises(InvalidLockError, match=r"says `# platform: linux-64` but `--platform"):
        read_lock(EXPLICIT, platform="osx-64")


def _edited(tmp_path: Path, old: str, new: str) -> Path:
    text = CONDA_LOCK.read_text()
    assert old in text
    path = tmp_path / "conda-lock.yml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "    sha256: fe51de6107f9edc7aa4f786a70f4a883943bc9d39b3bb7307c04c41410990726\n",
            "",
            r"entry `_libgcc_mutex` at .*linux-64\[0\]: it has no sha256; only an `@EXPLICIT`",
        ),
        (
            "url: https://conda.anaconda.org/conda-forge/linux-64/_libgcc_mutex",
            "url: git+https://example.org/linux-64/_libgcc_mutex",
            r"entry `_libgcc_mutex` .*is not an http\(s\) or file URL of an archive",
        ),
        ("- name: _libgcc_mutex\n", "- name: Bad Name\n", r"`Bad Name`.*invalid name"),
        ("  platform: linux-64\n", "  platform: linux-65\n", r"unknown platform `linux-65`"),
        ("  manager: conda\n", "  manager: cargo\n", r"manager `cargo` is neither"),
        ("version: 1\n", "version: 2\n", r"conda-lock file of version `2`"),
    ],
)
def test_bad_entries_are_refused_naming_file_and_entry(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    path = _edited(tmp_path, old, new)
    with pytest.raises(InvalidLockError, match=message) as caught:
        read_lock(path)
    assert str(path) in caught.value.message


def test_explicit_entry_without_any_hash_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "env.txt"
    path.write_text(EXPLICIT.read_text().replace("#1030174db5c183f3afb4181a0a02873d", ""))
    with pytest.raises(InvalidLockError, match=r"`xtensor` at .*: it has no sha256 \(nor an md5\)"):
        read_lock(path)


def test_not_a_lock_file(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text("channels: [conda-forge]\ndependencies: [python]\n")
    with pytest.raises(InvalidLockError, match=r"is not a lock file envd reads"):
        read_lock(path)
    with pytest.raises(InvalidLockError, match=r"failed to read lock file"):
        read_lock(tmp_path / "nope.yml")


def test_a_named_pixi_environment(tmp_path: Path) -> None:
    import rattler

    groups = LOCKS / "pixi" / "solve-groups" / "pixi.lock"
    for name in ("default", "max-py310", "min-py38"):
        env = rattler.LockFile.from_path(groups).environment(name)
        assert env is not None
        lock = read_lock(groups, environment=None if name == "default" else name)
        assert {lp.platform: len(lp.packages) for lp in lock.platforms} == {
            str(p.subdir): len(env.packages(p) or []) for p in env.platforms()
        }
    assert read_lock(groups, environment="min-py38") != read_lock(groups)
    with pytest.raises(InvalidLockError) as info:
        read_lock(groups, environment="py39")
    assert (info.value.message, info.value.hint) == (
        f"`{groups}` has no environment `py39`",
        "it has `default`, `max-py310`, `min-py38`: choose one with `--lock-environment NAME`",
    )
    with pytest.raises(
        InvalidLockError, match=r"names an environment of a pixi\.lock, but"
    ) as info:
        read_lock(CONDA_LOCK, environment="default")
    assert info.value.hint is not None and info.value.hint.startswith("drop `--lock-environment`")


def test_from_lock_refuses_find_links_like_every_spec_option(tmp_path: Path) -> None:
    from envd.client.lock_readers import locked_request
    from envd.client.parser import build_parser
    from envd.errors import InvalidSpecError

    args = build_parser().parse_args(
        ["resolve", "--from-lock", str(tmp_path / "x.lock"), "--find-links", "https://l.example/"]
    )
    with pytest.raises(InvalidSpecError, match=r"takes no spec options, but `--find-links`"):
        locked_request(args)
