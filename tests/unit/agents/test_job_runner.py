"""JobRunner under cancellation and its whole-job deadline, on real loopback channels: a
cancelled or timed-out job leaves no temp files and writes no description."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import envd.description
from envd.agents.archive_cache import ArchiveCache
from envd.agents.conda_resolver import CondaResolver
from envd.agents.fetch import Fetcher
from envd.agents.job_runner import Assignment, JobRunner
from envd.agents.transmute import Transmuter
from envd.catalog import Catalog
from envd.channels import DEFAULT_CHANNEL_ALIAS
from envd.errors import StageTimeoutError
from envd.ids import req_id
from envd.progress import Stage
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec
from envd.store.local import LocalStore
from faulty_channel import (
    PACKAGE,
    SlowArchiveChannel,
    serve_slow_archive,
    stalled_server,
    write_one_package_channel,
)
from harness import wait_for

Events = list[tuple[Stage, str]]


class FixedClock:
    def now(self) -> float:
        return 1_700_000_000.0


@pytest.fixture
def trickling(tmp_path: Path) -> Iterator[SlowArchiveChannel]:
    folder = tmp_path / "channel"
    write_one_package_channel(folder)
    with serve_slow_archive(folder, "trickle") as served:
        yield served


def runner_for(tmp_path: Path, *, job_timeout: float = 60.0) -> JobRunner:
    store = LocalStore(tmp_path / "store")
    archives = ArchiveCache(store, Fetcher(attempts=1, timeout=5.0), Transmuter(workers=0),
                            scratch_dir=tmp_path / "archives-tmp", concurrency=2)  # fmt: skip
    return JobRunner(
        resolver=CondaResolver(tmp_path / "repodata", DEFAULT_CHANNEL_ALIAS, 30.0),
        catalog=Catalog(store), archives=archives, clock=FixedClock(), agent_id="agent-t",
        host="h", job_timeout=job_timeout,
    )  # fmt: skip


def job_for(spec: Spec) -> Assignment:
    return Assignment(
        job_id="job-1", lease_id="lease-1", req_id=req_id(spec), platform="linux-64",
        canonical_spec=json.dumps(spec.to_canonical()).encode(), no_archives=False,
        requester_user="tester",
    )  # fmt: skip


def spec_of(channel: str) -> Spec:
    return normalize_spec(RawSpec(conda=[RawDependency(PACKAGE)], channels=[channel]))


def left_behind(tmp_path: Path) -> list[str]:
    """Temp files under `archives-tmp/` and anything written to the store."""
    roots = [tmp_path / "archives-tmp", tmp_path / "store"]
    return sorted(str(p) for root in roots if root.exists() for p in root.rglob("*"))


async def cancel_when(runner: JobRunner, job: Assignment, ready: object, events: Events) -> float:
    """Run the job, cancel it once `ready()` holds; returns how long the cancellation took."""

    async def progress(stage: Stage, message: str) -> None:
        events.append((stage, message))

    task = asyncio.create_task(runner.run(job, progress))
    while not ready():  # type: ignore[operator]
        assert not task.done(), task
        await asyncio.sleep(0.02)
    task.cancel()
    start = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    return time.monotonic() - start


def test_cancelled_mid_download_stops_cleans_up_and_writes_no_description(
    tmp_path: Path, trickling: SlowArchiveChannel
) -> None:
    runner = runner_for(tmp_path)
    scratch = tmp_path / "archives-tmp"

    def downloading() -> bool:
        return trickling.started.is_set() and any(scratch.rglob("*.part"))

    events: Events = []
    try:
        took = asyncio.run(
            cancel_when(runner, job_for(spec_of(trickling.url)), downloading, events)
        )
    finally:
        runner.archives.close()
    assert took < 2.0  # within a read, not at the 5 s fetch timeout
    assert left_behind(tmp_path) == []
    assert (Stage.UPLOADING, "caching 1 archives") in events
    assert not [m for _, m in events if m.startswith("writing description")]
    wait_for(trickling.ended.is_set, 5, "the channel to see the download dropped")


def test_cancelled_while_fetching_repodata_stops_at_once(tmp_path: Path) -> None:
    runner = runner_for(tmp_path)
    with stalled_server() as stalled:
        try:
            took = asyncio.run(
                cancel_when(runner, job_for(spec_of(stalled.url)), lambda: stalled.connections, [])
            )
        finally:
            runner.archives.close()
        wait_for(stalled.closed_by_client, 5, "the repodata requests to be dropped")
    assert took < 2.0
    assert left_behind(tmp_path) == []


def test_the_job_deadline_names_the_stage_and_leaves_nothing_behind(
    tmp_path: Path, trickling: SlowArchiveChannel
) -> None:
    runner = runner_for(tmp_path, job_timeout=1.5)

    async def progress(stage: Stage, message: str) -> None:
        pass

    start = time.monotonic()
    with pytest.raises(StageTimeoutError) as info:
        try:
            asyncio.run(runner.run(job_for(spec_of(trickling.url)), progress))
        finally:
            runner.archives.close()
    assert time.monotonic() - start < 4.0
    assert info.value.message == (
        "timed out running job `job-1` for `linux-64` while caching archives: not done within 1.5 s"
    )
    assert info.value.reference == "E204"
    assert left_behind(tmp_path) == []


def test_a_description_is_validated_once_on_its_way_to_the_store(
    tmp_path: Path, trickling: SlowArchiveChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent leaves validation to the catalog, which validates as it writes: once
    (a spy counting calls through the real validation)."""
    validated: list[str] = []
    real = envd.description.validate_description

    def spy(doc: Any, where: str | None = None) -> dict[str, Any]:
        validated.append(doc["full_id"])
        return real(doc, where)

    monkeypatch.setattr(envd.description, "validate_description", spy)
    runner = runner_for(tmp_path)
    job = dataclasses.replace(job_for(spec_of(trickling.url)), no_archives=True)

    async def progress(stage: Stage, message: str) -> None:
        pass

    try:
        full_id = asyncio.run(runner.run(job, progress))
    finally:
        runner.archives.close()
    assert validated == [full_id]
    monkeypatch.undo()
    stored = runner.catalog.read_description(job.req_id, "linux-64", full_id)
    assert stored["packages"][0]["name"] == PACKAGE
