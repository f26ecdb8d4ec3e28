"""Transmutes `.tar.bz2` → `.conda` in worker processes and proves both hold the same files."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conda_package_streaming.package_streaming import stream_conda_component
from conda_package_streaming.transmute import transmute

from envd.errors import (
    ArchiveIntegrityError,
    ConfigError,
    EnvdError,
    InternalError,
    error_from_dict,
    error_to_dict,
)

log = logging.getLogger("envd.agent")
DEFAULT_LEVEL = 10  # zstd: near level 19's ratio on conda payloads at a fraction of the time
MIN_LEVEL = 1
MAX_LEVEL = 22
_CHUNK = 1024 * 1024
_TARBZ2 = ".tar.bz2"
_CONDA = ".conda"
_SECRET_PREFIX = "ENVD_CHANNEL_TOKEN"
_HINT = "the source archive is damaged or unusual; report the package to its channel"


@dataclass(frozen=True, slots=True)
class Transmuted:
    """A verified `.conda` made from a `.tar.bz2`."""

    path: Path
    sha256: str
    size: int
    files: int  # members compared with the source


@dataclass(frozen=True, slots=True)
class Member:
    """What the verification compares of one archive member."""

    kind: bytes  # the tar type flag
    mode: int
    linkname: str
    sha256: str  # of the content, for regular files; "" otherwise


def conda_name(filename: str) -> str:
    """`zlib-1.3-h0_0.tar.bz2` → `zlib-1.3-h0_0.conda`."""
    if not filename.endswith(_TARBZ2):
        raise InternalError(f"failed to name a `.conda` for `{filename}`: not a `.tar.bz2`")
    return filename.removesuffix(_TARBZ2) + _CONDA


class Transmuter:
    """Runs transmutes on up to `workers` worker processes (started on first use, kept for the
    agent's life), or in the calling thread with `workers=0`. Thread-safe: each caller blocks
    until a worker is free, so `workers` transmutes run at once across all jobs.

    Workers are plain `python -c` processes fed one JSON line per archive, not multiprocessing:
    that would fork a process full of gRPC threads, or (spawn) re-import the embedding
    program's `__main__`, which breaks scripts that use the embedded default unguarded."""

    def __init__(self, *, level: int = DEFAULT_LEVEL, workers: int | None = None) -> None:
        if not MIN_LEVEL <= level <= MAX_LEVEL:
            raise ConfigError(
                f"failed to set the transmute level: zstd level `{level}` is outside "
                f"{MIN_LEVEL}..{MAX_LEVEL}",
                hint=f"pick a level from {MIN_LEVEL} (fastest) to {MAX_LEVEL}; {DEFAULT_LEVEL} suits most",
            )
        self.level = level
        self.workers = (os.cpu_count() or 1) if workers is None else max(0, workers)
        self._slots = threading.BoundedSemaphore(max(1, self.workers))
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._running: set[_Worker] = set()
        self._finalizer = weakref.finalize(self, _stop_all, self._running)

    def transmute(self, source: Path, out_dir: Path) -> Transmuted:
        """Transmute `source` (named `<stem>.tar.bz2`) into `out_dir/<stem>.conda`, verified;
        blocks until done. Raises `ArchiveIntegrityError` if the result is not faithful."""
        if self.workers == 0:
            return transmute_verified(str(source), str(out_dir), self.level, in_worker=False)
        task = {"source": str(source), "out_dir": str(out_dir), "level": self.level}
        with self._slots:
            worker = self._take()
            try:
                reply = worker.call(task)
            except (OSError, EOFError, ValueError) as err:
                self._discard(worker)
                raise InternalError(
                    f"failed to transmute `{source.name}`: its worker process died",
                    hint="the agent may be short of memory; lower `--workers` and retry",
                ) from err
            with self._lock:
                self._idle.append(worker)
        if "error" in reply:
            raise error_from_dict(reply["error"])
        done = reply["ok"]
        return Transmuted(Path(done["path"]), done["sha256"], done["size"], done["files"])

    def close(self) -> None:
        """Stop the workers; a later transmute starts new ones."""
        with self._lock:
            self._idle.clear()
        _stop_all(self._running)

    def _take(self) -> _Worker:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            worker = _Worker()
            self._running.add(worker)
            return worker

    def _discard(self, worker: _Worker) -> None:
        worker.stop()
        with self._lock:
            self._running.discard(worker)


class _Worker:
    """One worker process and its pipes; used by one thread at a time."""

    def __init__(self) -> None:
        # no channel credentials in a process that only reads local files
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SECRET_PREFIX)}
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-c", f"from {__name__} import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
        )  # fmt: skip

    def call(self, task: dict[str, Any]) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None  # both are pipes
        stdin.write(json.dumps(task) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise EOFError(f"worker exited with status {self.process.wait()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def stop(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()  # EOF: the worker's loop ends
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _stop_all(workers: set[_Worker]) -> None:
    while workers:
        workers.pop().stop()


def serve() -> None:
    """A worker's loop: one JSON task per stdin line, one JSON reply per stdout line."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the agent's; stdin EOF ends us
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not break the protocol
    for line in sys.stdin:
        task = json.loads(line)
        try:
            made = transmute_verified(task["source"], task["out_dir"], task["level"])
            reply: dict[str, Any] = {"ok": {"path": str(made.path), "sha256": made.sha256,
                                            "size": made.size, "files": made.files}}  # fmt: skip
        except EnvdError as err:
            reply = {"error": error_to_dict(err)}
        except Exception as err:  # process boundary: report, keep serving
            reply = {"error": error_to_dict(InternalError(f"transmute crashed: {err!r}"))}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def transmute_verified(
    source: str, out_dir: str, level: int, *, in_worker: bool = True
) -> Transmuted:
    """The worker's job: transmute, then check the result is a v2 `.conda` with the same files.

    In a worker, component tars too big for memory spill into `out_dir` (beside the output, on
    the agent's cache disk) rather than the system temp dir."""
    name = os.path.basename(source)
    out = Path(out_dir) / conda_name(name)
    out.unlink(missing_ok=True)
    previous = tempfile.tempdir
    try:
        if in_worker:  # the process only transmutes: no one else's temp files move
            tempfile.tempdir = out_dir
        made = Path(transmute(source, out_dir, compression_level=level, compression_threads=1))
        files = verify_same_files(Path(source), made)
    except ArchiveIntegrityError:
        out.unlink(missing_ok=True)
        raise
    except Exception as err:  # tar, bz2, zstd and zip errors: the source is not a valid archive
        out.unlink(missing_ok=True)
        raise ArchiveIntegrityError(
            f"failed to transmute `{name}`: {type(err).__name__}: {err}", _HINT
        ) from err
    finally:
        tempfile.tempdir = previous
    sha256, size = _digest(made)
    return Transmuted(made, sha256, size, files)


def verify_same_files(source: Path, converted: Path) -> int:
    """Check `converted` is a valid v2 `.conda` whose members (names, types, modes, link
    targets and every file's sha256) equal `source`'s; returns how many members matched."""
    check_conda_v2(converted)
    expected = manifest(source)
    found = manifest(converted)
    if expected == found:
        return len(found)
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    changed = sorted(n for n in set(expected) & set(found) if expected[n] != found[n])
    if changed:
        name = changed[0]
        why = f"`{name}` differs ({_describe(expected[name])} → {_describe(found[name])})"
    elif missing:
        why = f"`{missing[0]}` is missing"
    else:
        why = f"`{extra[0]}` is extra"
    raise ArchiveIntegrityError(
        f"failed to verify `{converted.name}` against `{source.name}`: {why} "
        f"({len(changed)} changed, {len(missing)} missing, {len(extra)} extra)",
        _HINT,
    )


def check_conda_v2(path: Path) -> None:
    """Raise unless `path` is a zip with `metadata.json` (format 2) and both components."""
    stem = path.name.removesuffix(_CONDA)
    wanted = {"metadata.json", f"info-{stem}.tar.zst", f"pkg-{stem}.tar.zst"}
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            metadata: Any = json.loads(archive.read("metadata.json")) if wanted <= names else {}
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ArchiveIntegrityError(f"failed to read `{path.name}` as a `.conda`: {err}") from err
    if not wanted <= names or metadata.get("conda_pkg_format_version") != 2:
        raise ArchiveIntegrityError(
            f"failed to verify `{path.name}`: not a v2 `.conda` (members {sorted(names)}, "
            f"metadata {metadata})",
            _HINT,
        )


def manifest(path: Path) -> dict[str, Member]:
    """Every member of a `.tar.bz2` or `.conda` (both components), streamed."""
    components = ("info", "pkg") if path.name.endswith(_CONDA) else ("pkg",)
    members: dict[str, Member] = {}
    for component in components:
        for tar, info in stream_conda_component(str(path), component=component):
            digest = ""
            if info.isfile():
                content = tar.extractfile(info)
                assert content is not None  # a regular file always has content
                digest = hashlib.file_digest(content, "sha256").hexdigest()
            members[info.name] = Member(info.type, info.mode, info.linkname, digest)
    return members


def _describe(member: Member) -> str:
    if member.sha256:
        return f"file sha256 `{member.sha256}` mode `{member.mode:o}`"
    return f"type `{member.kind.decode()}` link `{member.linkname}` mode `{member.mode:o}`"


def _digest(path: Path) -> tuple[str, int]:
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
        return digest, os.fstat(f.fileno()).st_size
