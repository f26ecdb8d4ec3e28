"""The conda-forge-scale channel, generated small: valid repodata that py-rattler solves to the
real lock, the same bytes every time; and the bench around it runs end to end."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import rattler
from rattler import Channel, Gateway, Subdir, Version

from bench.big_channel import measure, render
from bench.channel import open_channel
from bench.lock_channel import PLATFORM, SUBDIRS, LockChannel, build_channel, read_lock
from envd.platforms import effective_virtual_packages, rattler_virtual_packages

RECORDS = 2_000
HEX = {"md5": re.compile(r"[0-9a-f]{32}"), "sha256": re.compile(r"[0-9a-f]{64}")}


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> LockChannel:
    return build_channel(tmp_path_factory.mktemp("big-channel"), RECORDS)


def _solve(channel: LockChannel, specs: list[str]) -> dict[str, str]:
    virtual = rattler_virtual_packages(
        effective_virtual_packages(PLATFORM, channel.virtual_packages)
    )

    async def run(url: str, cache: Path) -> list[rattler.RepoDataRecord]:
        return await rattler.solve(
            [Channel(url)], specs, gateway=Gateway(cache_dir=cache),
            platforms=[Subdir(PLATFORM), Subdir("noarch")], virtual_packages=virtual,
            timeout=timedelta(seconds=60),
        )  # fmt: skip

    with open_channel("http", channel.folder) as source:
        records = asyncio.run(run(source.url, channel.folder.parent / "rattler-cache"))
    return {r.name.normalized: str(r.version) for r in records}


@pytest.mark.timeout(30)
def test_repodata_is_well_formed(channel: LockChannel) -> None:
    packages = read_lock()
    assert len(packages) == len(channel.expected) == 885
    records: dict[str, dict[str, object]] = {}
    for subdir in SUBDIRS:
        document = json.loads((channel.folder / subdir / "repodata.json").read_text())
        assert document["info"] == {"subdir": subdir}
        for key in ("packages", "packages.conda"):
            for filename, record in document[key].items():
                assert filename.endswith(".tar.bz2" if key == "packages" else ".conda")
                assert record["subdir"] == subdir
                assert all(HEX[h].fullmatch(str(record[h])) for h in HEX)
                assert isinstance(record["size"], int) and record["size"] > 0
                records[filename] = record
    assert len(records) == channel.records == RECORDS
    newest: dict[str, str] = {}
    for record in records.values():
        name, version = str(record["name"]), str(record["version"])
        if name not in newest or Version(version) > Version(newest[name]):
            newest[name] = version
    assert newest == channel.expected
    real = {p.filename: p for p in packages}
    assert {records[f]["sha256"] for f in real} == {p.sha256 for p in packages}


@pytest.mark.timeout(30)
def test_py_rattler_solves_to_the_lock(channel: LockChannel) -> None:
    assert _solve(channel, channel.specs()) == channel.expected
    unseen = channel.unseen_specs(3)
    assert unseen[:-1] == channel.specs() and unseen[-1] not in channel.specs()
    assert _solve(channel, unseen) == channel.expected


@pytest.mark.timeout(30)
def test_generation_is_deterministic_and_cached(channel: LockChannel, tmp_path: Path) -> None:
    again = build_channel(tmp_path, RECORDS)
    for subdir in SUBDIRS:
        ours, theirs = (c.folder / subdir / "repodata.json" for c in (channel, again))
        assert ours.read_bytes() == theirs.read_bytes()
    stamp = (again.folder / "manifest.json").stat().st_mtime_ns
    assert build_channel(tmp_path, RECORDS).folder == again.folder
    assert (again.folder / "manifest.json").stat().st_mtime_ns == stamp


@pytest.mark.timeout(60)
def test_bench_runs_end_to_end(channel: LockChannel) -> None:
    progress: list[str] = []
    result = measure(RECORDS, 1, channel.folder.parent, progress.append)
    assert (result.records, result.packages, result.specs) == (RECORDS, 885, len(channel.roots))
    for pair in (result.cold, result.cold_cpu, result.warm):
        assert len(pair.envd.samples_ms) == len(pair.rattler.samples_ms) == 1
        assert pair.ratio > 0 and pair.paired_ratio > 0
        assert pair.limit_ms > pair.rattler.median_ms
    table = render(result)
    assert table.startswith(f"resolve at conda-forge scale: {RECORDS} records, ")
    assert "cold (CLI, fresh)" in table and "warm (hot agent)" in table
    assert "same, CPU ms" in table


def test_a_peer_killed_by_a_signal_runs_once_more_then_is_named(tmp_path: Path) -> None:
    """The timed process of the bench (a real child process) dying by a signal once is run
    again in a new home; dying twice is an error naming the signal."""
    import sys

    from bench.big_channel import _timed_process

    marker = tmp_path / "died-once"
    script = (
        "import os, pathlib, signal, sys\n"
        "marker = pathlib.Path(sys.argv[1])\n"
        "if not marker.exists():\n"
        "    marker.touch(); os.kill(os.getpid(), signal.SIGSEGV)\n"
        "print('ran')\n"
    )
    (tmp_path / "home").mkdir()
    usage, out = _timed_process([sys.executable, "-c", script, str(marker)], tmp_path / "home")
    assert out == "ran\n" and usage.wall > 0
    always = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    (tmp_path / "again").mkdir()
    with pytest.raises(RuntimeError, match=r"it exited with SIGTERM: \(no output on stderr\)"):
        _timed_process([sys.executable, "-c", always], tmp_path / "again")
