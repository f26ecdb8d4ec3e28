"""Synthetic `.tar.bz2` conda packages for the transmute bench, built with py-rattler-build."""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from rattler_build import ArchiveType, assemble_package

from bench.channel import ROOT

SEED = 1000
FILE_SIZE = 512 * 1024  # payload per file inside a package
TEXT_SHARE = 0.75  # the rest is random bytes: compresses about as well as a typical package
_BLOCK = 4096
_VOCABULARY = 512
_TIMESTAMP = datetime(2024, 1, 1, tzinfo=UTC)  # the same archives every run
FIXTURE = "mock-2.0.0-py37_1000.tar.bz2"


def build_archives(count: int, payload: int, folder: Path) -> list[Path]:
    """`count` noarch packages `envd-bench-<i>`, each holding about `payload` bytes of text
    mixed with random bytes, as `.tar.bz2` under `folder/out`."""
    rng = random.Random(SEED)
    words = [_word(rng) for _ in range(_VOCABULARY)]
    out = folder / "out"
    archives = []
    for index in range(count):
        name = f"envd-bench-{index}"
        files = folder / "files" / name
        share = files / "share" / name
        share.mkdir(parents=True)
        for number, size in enumerate(_file_sizes(payload)):
            (share / f"part-{number}.txt").write_bytes(_content(rng, words, size))
        built = assemble_package(
            name, "1.0", "noarch", "0", out, files_dir=files, noarch="generic",
            archive_type=ArchiveType.TarBz2, timestamp=_TIMESTAMP, detect_prefix=False,
        )  # fmt: skip
        archives.append(Path(built.path))
    return archives


def fixture_archive() -> Path | None:
    """The real package the tests transmute (a Python library, so a realistic mix), if this
    checkout has it."""
    return next(iter(sorted((ROOT / "tests" / "fixtures" / "packages").rglob(FIXTURE))), None)


def _file_sizes(payload: int) -> Iterator[int]:
    for start in range(0, max(1, payload), FILE_SIZE):
        yield min(FILE_SIZE, max(1, payload) - start)


def _content(rng: random.Random, words: list[str], size: int) -> bytes:
    """Blocks of word-salad lines, a random-byte block between some of them."""
    parts = []
    written = 0
    while written < size:
        want = min(_BLOCK, size - written)
        if rng.random() < TEXT_SHARE:
            text = " ".join(rng.choices(words, k=want // 5)) + "\n"
            block = text.encode()[:want]
        else:
            block = rng.randbytes(want)
        parts.append(block)
        written += len(block)
    return b"".join(parts)


def _word(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 10)))
