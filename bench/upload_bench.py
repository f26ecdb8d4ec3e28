"""Archive uploads through envd's store layer vs the SDK's plain upload, on each emulator."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.emulators import (
    EMULATOR_NAMES,
    SCHEMES,
    Backend,
    Emulator,
    missing,
    scoped_env,
    start_emulator,
)
from bench.raw_upload import raw_upload
from bench.stats import Rate
from envd.store.base import Store
from envd.store.url import open_store

Progress = Callable[[str], None]
SEED = 20240601  # the same bytes every run
WARMUP_BYTES = 1024
_CHUNK = 1024 * 1024
ENVD_PREFIX = "envd"  # envd writes under `<bucket>/envd/`, the SDK under `<bucket>/raw/`
RAW_PREFIX = "raw"


@dataclass(frozen=True, slots=True)
class UploadComparison:
    """The same files sent to one emulator by envd's store and by the SDK's plain call."""

    backend: Backend
    emulator: str
    envd: Rate
    raw: Rate
    raw_call: str


@dataclass(frozen=True, slots=True)
class Uploads:
    file_sizes: tuple[int, ...]
    rounds: int
    compared: tuple[UploadComparison, ...]
    skipped: dict[str, str]  # backend → why it did not run


def upload_sizes(count: int, size: int, large_size: int) -> tuple[int, ...]:
    """`count` files of `size` bytes, then one of `large_size` (none if 0): big enough for S3's
    multipart path, which envd takes at 8 MiB."""
    return (size,) * count + ((large_size,) if large_size else ())


def measure_uploads(
    backends: Sequence[Backend],
    sizes: Sequence[int],
    rounds: int,
    scratch: Path,
    progress: Progress,
) -> Uploads:
    """Each backend's emulator in turn, started fresh, with its env vars set only meanwhile;
    every round uploads every file again, to new keys."""
    paths = write_files(sizes, scratch / "upload-files", "file")
    (warmup,) = write_files([WARMUP_BYTES], scratch / "upload-warmup", "warmup")
    compared: list[UploadComparison] = []
    skipped: dict[str, str] = {}
    for backend in backends:
        name = EMULATOR_NAMES[backend]
        reason = missing(backend)
        if reason is not None:
            progress(f"uploads: skipping {backend}: {reason}")
            skipped[backend] = reason
            continue
        progress(f"uploads: {backend} on {name}, {rounds} x {len(paths)} files, envd and SDK")
        with start_emulator(backend, scratch / f"emulator-{backend}") as emulator:
            with scoped_env(emulator.env):
                compared.append(_compare(emulator, paths, rounds, warmup))
    return Uploads(tuple(sizes), rounds, tuple(compared), skipped)


def write_files(sizes: Sequence[int], folder: Path, stem: str) -> list[Path]:
    """Random (incompressible) files: uploads move bytes, so content doesn't matter, only
    that no layer could shrink it."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    paths = []
    for index, size in enumerate(sizes):
        path = folder / f"{stem}-{index}.bin"
        with path.open("wb") as out:
            for start in range(0, size, _CHUNK):
                out.write(rng.randbytes(min(_CHUNK, size - start)))
        paths.append(path)
    return paths


def _compare(
    emulator: Emulator, paths: Sequence[Path], rounds: int, warmup: Path
) -> UploadComparison:
    """File by file, envd then the SDK or the reverse in turn, so drift hits both alike; one
    untimed upload each first connects and resolves credentials."""
    store = open_store(f"{SCHEMES[emulator.backend]}://{emulator.bucket}/{ENVD_PREFIX}")
    raw = raw_upload(emulator)
    try:
        _envd_upload(store, warmup.name, warmup)
        raw(f"{RAW_PREFIX}/{warmup.name}", warmup)
        seconds = {"envd": 0.0, "raw": 0.0}
        turns = [(r, path) for r in range(rounds) for path in paths]
        for index, (number, path) in enumerate(turns):
            key = f"{number}/{path.name}"
            sides: list[tuple[str, Callable[[], None]]] = [
                ("envd", functools.partial(_envd_upload, store, key, path)),
                ("raw", functools.partial(raw, f"{RAW_PREFIX}/{key}", path)),
            ]
            for side, upload in sides if index % 2 == 0 else reversed(sides):
                start = time.perf_counter()
                upload()
                seconds[side] += time.perf_counter() - start
    finally:
        raw.close()
        close = getattr(store, "close", None)  # the Azure store holds a connection pool
        if callable(close):
            close()
    total = rounds * sum(path.stat().st_size for path in paths)
    return UploadComparison(
        emulator.backend,
        emulator.name,
        envd=Rate.of(total, seconds["envd"]),
        raw=Rate.of(total, seconds["raw"]),
        raw_call=raw.call,
    )


def _envd_upload(store: Store, key: str, path: Path) -> None:
    """What the agent's archive cache calls for each archive it uploads."""
    if not store.put_file_if_absent(key, path):
        raise RuntimeError(
            f"failed to benchmark uploads: `{key}` was already in `{store.url}`, so nothing "
            "was uploaded"
        )
