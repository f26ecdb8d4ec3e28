"""Build prefixes for a mixed spec's wheels: keyed by the conda set, installed once with
py-rattler's real installer from a real (stand-in) python archive, reused, evicted LRU, and a
python that can't be installed fails naming it. The archive is served from a local channel
folder (file:// URLs: the agent's fetcher reads those without a server)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest

from conda_python import BUILD, VERSION, python_channel
from envd.agents.build_prefix import MARK, BuildPrefixes, prefix_key
from envd.agents.fetch import Fetcher
from envd.description import ResolvedPackage
from envd.errors import WheelBuildError
from envd.store.layout import package_key
from envd.store.local import LocalStore


def conda_python(tmp_path: Path) -> ResolvedPackage:
    channel = tmp_path / "channel"
    archive = python_channel(channel, tmp_path / "calls")
    data = archive.read_bytes()
    return ResolvedPackage(
        kind="conda", name="python", version=VERSION, build=BUILD, channel=channel.as_uri(),
        url=archive.as_uri(), filename=archive.name, sha256=hashlib.sha256(data).hexdigest(),
        md5=None, size=len(data), subdir="linux-64",
    )  # fmt: skip


def prefixes(tmp_path: Path, keep: int = 2) -> BuildPrefixes:
    return BuildPrefixes(LocalStore(tmp_path / "store"), Fetcher(attempts=1), tmp_path / "cache",
                         keep=keep)  # fmt: skip


async def interpreter(built: BuildPrefixes, conda: list[ResolvedPackage]) -> Path:
    async with built.python(conda, "linux-64", "`envd-pure 1.0`") as python:
        assert python.is_file() and os.access(python, os.X_OK)
        return python


def test_the_key_is_the_conda_set() -> None:
    one = ResolvedPackage("conda", "python", "3.11.7", "h0_0", "c", "u", "python.tar.bz2",
                          "a" * 64, None, 1, "linux-64")  # fmt: skip
    two = replace(one, name="zlib", filename="zlib.conda", sha256="b" * 64)
    wheel = replace(one, kind="pypi", name="six", filename="six.whl", sha256="c" * 64)
    assert prefix_key([one, two]) == prefix_key([two, one]) == prefix_key([two, wheel, one])
    assert prefix_key([one, two]) != prefix_key([one, replace(two, sha256="d" * 64)])
    assert prefix_key([one]) != prefix_key([one, two])


def test_installed_once_then_reused(tmp_path: Path) -> None:
    python = conda_python(tmp_path)
    built = prefixes(tmp_path)
    first = asyncio.run(interpreter(built, [python]))
    again = asyncio.run(interpreter(built, [python]))
    assert (
        first
        == again
        == tmp_path / "cache" / "build-prefixes" / prefix_key([python]) / ("bin/python")
    )
    assert built.installed == 1
    assert (first.parent.parent / "conda-meta").is_dir()
    assert (first.parent.parent / MARK).is_file()


def test_from_the_store_when_cached_there(tmp_path: Path) -> None:
    python = conda_python(tmp_path)
    store = LocalStore(tmp_path / "store")
    store.put_file_if_absent(package_key(python.sha256, python.filename), Path(python.url[7:]))
    Path(python.url[7:]).unlink()  # the channel no longer has it: only the store does
    built = BuildPrefixes(store, Fetcher(attempts=1), tmp_path / "cache")
    assert asyncio.run(interpreter(built, [python])).is_file()


def test_least_recently_used_prefixes_are_removed(tmp_path: Path) -> None:
    """keep=1: a second conda set's prefix replaces the first once no build uses it."""
    python = conda_python(tmp_path)
    other = conda_python(tmp_path / "other")  # a script naming another `calls`: other bytes
    assert prefix_key([python]) != prefix_key([other])
    built = prefixes(tmp_path, keep=1)
    root = tmp_path / "cache" / "build-prefixes"

    async def nested() -> list[str]:
        async with built.python([python], "linux-64", "x"), built.python([other], "linux-64", "x"):
            return sorted(p.name for p in root.iterdir() if p.is_dir())  # both in use: kept

    assert asyncio.run(nested()) == sorted([prefix_key([python]), prefix_key([other])])
    assert [p.name for p in root.iterdir()] == [prefix_key([python])]  # the one used last
    asyncio.run(interpreter(built, [other]))
    assert [p.name for p in root.iterdir()] == [prefix_key([other])]
    assert built.installed == 3


def test_a_python_archive_that_fails_its_check_fails_the_build_naming_it(tmp_path: Path) -> None:
    python = replace(conda_python(tmp_path), sha256="0" * 64)
    built = prefixes(tmp_path)
    with pytest.raises(WheelBuildError) as failed:
        asyncio.run(interpreter(built, [python]))
    assert failed.value.message.startswith(
        "failed to build `envd-pure 1.0` for `linux-64`: the environment's python (`python "
        f"3.11.7 h0_0`, from its conda packages) could not be installed to build with: "
        f"`{python.filename}` from `{python.url}` has sha256 `"
    )
    assert "never a host one" in (failed.value.hint or "")
    assert not (tmp_path / "cache" / "build-prefixes" / prefix_key([python])).exists()


def test_an_unreachable_python_fails_and_a_solution_without_one_too(tmp_path: Path) -> None:
    python = conda_python(tmp_path)
    Path(python.url[7:]).unlink()
    with pytest.raises(WheelBuildError, match="could not be installed to build with: "):
        asyncio.run(interpreter(prefixes(tmp_path), [python]))
    zlib = replace(python, name="zlib")
    with pytest.raises(WheelBuildError, match="the conda solution has no `python`"):
        asyncio.run(interpreter(prefixes(tmp_path), [zlib]))


def test_evicted_prefixes_are_deleted_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prefix is ~100-300 MB: its deletion must not stall the agent's event loop (its
    heartbeats and other jobs). A spy around the real `shutil.rmtree` records the thread each
    deletion ran on (no other way to observe it); the evicted prefix is renamed aside on the
    loop first, so a build starting meanwhile never finds a half-deleted one."""
    import shutil
    import threading

    python = conda_python(tmp_path)
    other = conda_python(tmp_path / "other")
    built = prefixes(tmp_path, keep=1)
    root = tmp_path / "cache" / "build-prefixes"
    real_rmtree = shutil.rmtree
    threads: list[tuple[str, bool]] = []

    def spy(path: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
        threads.append((Path(path).name, threading.current_thread() is threading.main_thread()))
        real_rmtree(path, *args, **kwargs)  # type: ignore[arg-type]

    asyncio.run(interpreter(built, [python]))
    (root / "trash-left-by-a-crash").mkdir()
    monkeypatch.setattr(shutil, "rmtree", spy)
    asyncio.run(interpreter(built, [other]))
    evicted = [(name, on_loop) for name, on_loop in threads if name.startswith("trash-")]
    assert sorted(name.split("-")[1] for name, _ in evicted) == sorted(
        ["left", prefix_key([python])]
    )
    assert not any(on_loop for _, on_loop in evicted)
    assert [p.name for p in root.iterdir()] == [prefix_key([other])]
