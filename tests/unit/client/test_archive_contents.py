"""What an archive says about itself, read from the real fixture archives."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.client.archive_contents import payload_problem, read_index
from envd.errors import ArchiveIntegrityError
from harness import ROOT

PACKAGES = ROOT / "tests" / "fixtures" / "packages"


def test_the_index_of_either_format_is_the_package() -> None:
    for suffix in (".conda", ".tar.bz2"):
        index = read_index(PACKAGES / "conda-package-handling" / f"mock-2.0.0-py37_1000{suffix}")
        assert (index["name"], index["version"], index["build"], index["subdir"]) == (
            "mock", "2.0.0", "py37_1000", "osx-64",
        )  # fmt: skip


def test_good_archives_have_no_payload_problem() -> None:
    for path in [
        *PACKAGES.glob("conda-package-handling/*"),
        *PACKAGES.glob("conda-test-recipes/*"),
    ]:
        assert payload_problem(path) is None, path


def test_what_is_not_an_archive_is_refused_by_name(tmp_path: Path) -> None:
    for name in ("junk.conda", "junk.tar.bz2"):
        (tmp_path / name).write_bytes(b"not an archive")
        with pytest.raises(ArchiveIntegrityError, match=rf"failed to read `{name}` from the store"):
            read_index(tmp_path / name)
