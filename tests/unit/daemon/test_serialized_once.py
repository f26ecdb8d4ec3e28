"""The slow path serializes a request's canonical spec once: the servicer's size check, the
req_id and every job it creates share the bytes (a lock's jobs: once per platform, each with
its packages), and the req_id is the one docs/ids.md defines."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import envd.spec
from envd.daemon.coordinator import Coordinator
from envd.daemon.environments_servicer import _largest_job
from envd.ids import req_id
from envd.locks import LockedPackage, LockedPlatform
from envd.spec import RawDependency, RawSpec, Spec, canonical_json, normalize_spec
from lifecycle_world import make_world
from memory_state import MemoryJobState

PLATFORMS = ["linux-64", "osx-arm64"]
CHANNEL = "https://conda.anaconda.org/conda-forge"


def _plain() -> Spec:
    return normalize_spec(RawSpec(conda=[RawDependency("numpy >=1.26")], python="3.11",
                                  channels=["conda-forge"]))  # fmt: skip


def _locked() -> Spec:
    def package(platform: str) -> LockedPackage:
        filename = "zlib-1.3.1-h0_0.conda"
        return LockedPackage(
            kind="conda", name="zlib", version="1.3.1", build="h0_0",
            url=f"{CHANNEL}/{platform}/{filename}", filename=filename, sha256="1" * 64,
            md5="2" * 32, size=10, depends=(), channel=CHANNEL, subdir=platform,
        )  # fmt: skip

    return normalize_spec(RawSpec(locked=[LockedPlatform(p, (package(p),)) for p in PLATFORMS]))


def _slow_path(tmp_path: Path, spec: Spec) -> tuple[str, list[bytes]]:
    """What a Resolve that creates jobs does with the spec: the servicer's size check and
    req_id, then the coordinator's req_id and jobs. Returns the req_id and the jobs' bytes."""

    async def main() -> tuple[str, list[bytes]]:
        w = await make_world(tmp_path, lambda _: MemoryJobState())
        try:
            coordinator = Coordinator(jobs=w.jobs, catalog=w.catalog, clock=w.clock,
                                      settings=w.jobs.settings, registry=w.registry,
                                      dispatcher=w.dispatcher)  # fmt: skip
            _largest_job(spec, PLATFORMS)
            rid = req_id(spec)
            events = coordinator.resolve(spec, PLATFORMS, force=True, no_wait=True,
                                         no_archives=False, requester={"user": "u"})  # fmt: skip
            jobs = [await w.state.get(e.job_id) async for e in events if e.job_id]
            return rid, [job.canonical_spec for job in jobs]
        finally:
            await w.state.close()

    return asyncio.run(main())


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Counts calls through the real canonical_json (a spy: it still serializes)."""
    calls: list[Any] = []

    def spy(value: Any) -> bytes:
        calls.append(value)
        return canonical_json(value)

    monkeypatch.setattr(envd.spec, "canonical_json", spy)
    return calls


@pytest.mark.parametrize(
    ("make", "serializations"),
    [(_plain, 1), (_locked, 1 + len(PLATFORMS))],  # a lock: its req_id's, then per platform
    ids=["plain", "locked"],
)
def test_a_request_serializes_its_spec_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: Callable[[], Spec], serializations: int
) -> None:
    spec = make()
    calls = _counting(monkeypatch)
    rid, jobs = _slow_path(tmp_path, spec)
    assert len(calls) == serializations
    assert sorted(jobs) == sorted(spec.job_bytes(p) for p in PLATFORMS)
    assert all(spec.job_bytes(p) is spec.job_bytes(p) for p in PLATFORMS)
    expected = hashlib.sha256(canonical_json(make().to_canonical())).hexdigest()[:40]
    assert rid == expected  # the req_id docs/ids.md defines, from freshly made bytes


def test_a_plain_specs_jobs_carry_its_canonical_bytes_and_a_locks_its_platforms() -> None:
    plain, locked = _plain(), _locked()
    assert plain.job_bytes("linux-64") is plain.canonical_bytes()
    assert locked.job_bytes(PLATFORMS[0]) != locked.job_bytes(PLATFORMS[1])
    assert locked.canonical_bytes() not in {locked.job_bytes(p) for p in PLATFORMS}


def test_equal_specs_stay_equal_whatever_they_have_serialized() -> None:
    made, fresh = _locked(), _locked()
    made.job_bytes("linux-64")
    assert made == fresh and hash(made) == hash(fresh)
    assert "_bytes" not in repr(made)
