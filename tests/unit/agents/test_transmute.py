"""Transmute `.tar.bz2` → `.conda` in worker processes; the result must hold the same files."""

from __future__ import annotations

import bz2
import hashlib
import io
import re
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from envd.agents.transmute import (
    Transmuter,
    check_conda_v2,
    conda_name,
    manifest,
    verify_same_files,
)
from envd.errors import ArchiveIntegrityError, ConfigError, InternalError

ROOT = Path(__file__).resolve().parents[2]
CPH = ROOT / "fixtures" / "packages" / "conda-package-handling"
MOCK = CPH / "mock-2.0.0-py37_1000.tar.bz2"
MOCK_CONDA = CPH / "mock-2.0.0-py37_1000.conda"  # conda-package-handling's own transmute
SYMLINKS = CPH / "cph_test_data-0.0.1-0.tar.bz2"


@pytest.fixture(scope="module")
def pool() -> Iterator[Transmuter]:
    transmuter = Transmuter(workers=2)
    yield transmuter
    transmuter.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rewrite(source: Path, dest: Path, change: str) -> None:
    """Copy a `.tar.bz2`, replacing the content of member `change` with other bytes."""
    with tarfile.open(source, "r:bz2") as old, tarfile.open(dest, "w:bz2") as new:
        for member in old:
            data = old.extractfile(member) if member.isfile() else None
            content = data.read() if data is not None else b""
            if member.name == change:
                content = content + b"# tampered\n"
                member.size = len(content)
            new.addfile(member, io.BytesIO(content) if member.isfile() else None)


def test_transmutes_on_a_worker_process_matching_the_reference_conda(
    pool: Transmuter, tmp_path: Path
) -> None:
    made = pool.transmute(MOCK, tmp_path)
    assert made.path == tmp_path / "mock-2.0.0-py37_1000.conda"
    assert (made.sha256, made.size) == (sha256(made.path), made.path.stat().st_size)
    assert made.files == len(manifest(MOCK)) == 43
    check_conda_v2(made.path)
    # the same files as the .conda conda-package-handling made of the same .tar.bz2
    assert manifest(made.path) == manifest(MOCK_CONDA) == manifest(MOCK)
    assert verify_same_files(MOCK, MOCK_CONDA) == 43


def test_symlinks_and_modes_survive_and_in_thread_mode_works(tmp_path: Path) -> None:
    made = Transmuter(workers=0, level=3).transmute(SYMLINKS, tmp_path)
    members = manifest(made.path)
    assert members["lib/alib"].linkname == "alibrary"
    assert members == manifest(SYMLINKS)


def test_verification_names_the_first_file_that_differs(pool: Transmuter, tmp_path: Path) -> None:
    altered = tmp_path / "src" / MOCK.name
    altered.parent.mkdir()
    rewrite(MOCK, altered, "info/index.json")
    made = pool.transmute(altered, tmp_path)
    before = manifest(MOCK)["info/index.json"].sha256
    after = manifest(made.path)["info/index.json"].sha256
    with pytest.raises(ArchiveIntegrityError) as info:
        verify_same_files(MOCK, made.path)
    assert info.value.message == (
        f"failed to verify `{made.path.name}` against `{MOCK.name}`: `info/index.json` differs "
        f"(file sha256 `{before}` mode `644` → file sha256 `{after}` mode `644`) "
        "(1 changed, 0 missing, 0 extra)"
    )


def test_a_conda_without_its_components_is_not_v2(tmp_path: Path) -> None:
    fake = tmp_path / "x-1-0.conda"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("metadata.json", '{"conda_pkg_format_version": 2}')
    with pytest.raises(
        ArchiveIntegrityError, match=re.escape("failed to verify `x-1-0.conda`: not a v2")
    ):
        check_conda_v2(fake)
    fake.write_bytes(b"not a zip")
    with pytest.raises(
        ArchiveIntegrityError, match=re.escape("failed to read `x-1-0.conda` as a `.conda`")
    ):
        check_conda_v2(fake)


def test_a_corrupt_source_fails_in_the_worker_with_its_error_class(
    pool: Transmuter, tmp_path: Path
) -> None:
    truncated = tmp_path / "src" / MOCK.name
    truncated.parent.mkdir()
    truncated.write_bytes(MOCK.read_bytes()[:20000])
    with pytest.raises(ArchiveIntegrityError) as info:
        pool.transmute(truncated, tmp_path)
    assert info.value.message.startswith(f"failed to transmute `{MOCK.name}`: ")
    assert info.value.hint == (
        "the source archive is damaged or unusual; report the package to its channel"
    )
    assert not (tmp_path / conda_name(MOCK.name)).exists()
    bad = tmp_path / "src" / "bad-1-0.tar.bz2"
    bad.write_bytes(bz2.compress(b"not a tar"))
    with pytest.raises(
        ArchiveIntegrityError, match=re.escape("failed to transmute `bad-1-0.tar.bz2`")
    ):
        pool.transmute(bad, tmp_path)


def test_a_dead_worker_fails_one_archive_and_is_replaced(tmp_path: Path) -> None:
    one, two, three = (tmp_path / n for n in ("one", "two", "three"))
    for folder in (one, two, three):
        folder.mkdir()
    transmuter = Transmuter(workers=1)
    try:
        transmuter.transmute(SYMLINKS, one)
        (worker,) = transmuter._running
        worker.process.kill()
        worker.process.wait()
        with pytest.raises(InternalError, match="its worker process died"):
            transmuter.transmute(SYMLINKS, two)
        assert transmuter.transmute(SYMLINKS, three).files == 22
    finally:
        transmuter.close()
    assert transmuter._running == set()


def test_names_and_levels() -> None:
    assert conda_name("zlib-1.2.11-h1de35cc_3.tar.bz2") == "zlib-1.2.11-h1de35cc_3.conda"
    with pytest.raises(InternalError, match=re.escape("not a `.tar.bz2`")):
        conda_name("zlib-1.2.11-h1de35cc_3.conda")
    with pytest.raises(ConfigError, match=re.escape("zstd level `23` is outside 1..22")):
        Transmuter(level=23)
