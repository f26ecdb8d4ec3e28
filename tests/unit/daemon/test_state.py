"""SqliteJobState against the shared JobState contract, plus what is SQLite's own."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from envd.clock import random_id
from envd.daemon.state import JobState, JobStatus, NewJob
from envd.daemon.state_sqlite import SqliteJobState, move_aside
from envd.errors import StateError
from memory_state import MemoryJobState
from state_conformance import JobStateConformance, new_job, run


class TestSqliteJobState(JobStateConformance):
    def open_state(self, path: Path) -> JobState:
        return SqliteJobState(path, random_id)


def test_calls_run_off_the_event_loop_thread(tmp_path: Path) -> None:
    seen: list[str] = []

    class Probe(SqliteJobState):
        def _get(self, job_id: str):  # type: ignore[no-untyped-def]
            seen.append(threading.current_thread().name)
            return super()._get(job_id)

    async def scenario() -> None:
        state = Probe(tmp_path / "s.sqlite", lambda: "1")
        job, _ = await state.create_or_attach(new_job(), 1.0)
        await asyncio.gather(*(state.get(job.job_id) for _ in range(20)))
        await state.close()

    run(scenario())
    # one thread owns the connection: calls are serialized without a lock
    assert len(seen) == 21 and len(set(seen)) == 1 and seen[0].startswith("envd-state")
    assert threading.current_thread().name not in seen


def test_writes_are_durable_settings(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"

    async def scenario() -> None:
        state = SqliteJobState(path, lambda: "1")
        await state.create_or_attach(new_job(), 1.0)
        await state.close()

    run(scenario())
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "jobs_in_flight_v3" in indexes and "jobs_in_flight_v2" not in indexes
    db.close()


def test_a_full_disk_is_a_clear_error_and_accepted_jobs_are_kept(tmp_path: Path) -> None:
    """SQLITE_FULL caused through SQLite itself (max_page_count): the same error a full
    filesystem gives, without needing a mount."""
    path = tmp_path / "s.sqlite"

    async def scenario() -> None:
        state = SqliteJobState(path, random_id)
        kept, _ = await state.create_or_attach(new_job(), 1.0)
        pages = await state._run(lambda: state._db.execute("PRAGMA page_count").fetchone()[0])
        await state._run(lambda: state._db.execute(f"PRAGMA max_page_count={pages}"))
        with pytest.raises(StateError) as info:
            for i in range(200):
                big = NewJob(f"{i:040d}", "linux-64", b"x" * 8000, False, {})
                await state.create_or_attach(big, 2.0)
        assert info.value.message == (
            f"failed to write the coordinator state `{path}`: database or disk is full"
        )
        assert info.value.hint is not None and "jobs already accepted are kept" in info.value.hint
        assert (await state.get(kept.job_id)).status is JobStatus.QUEUED  # still usable
        await state.close()

    run(scenario())


def test_a_file_that_is_not_a_database_is_refused_at_start(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError) as info:
        SqliteJobState(path, random_id)
    assert info.value.message == (
        f"failed to open the coordinator state `{path}`: file is not a database"
    )
    assert info.value.hint is not None and "`--recover`" in info.value.hint
    aside = move_aside(path, 1700000000.0)
    assert aside.name == "s.sqlite.damaged-1700000000" and aside.exists() and not path.exists()


class TestMemoryJobState(JobStateConformance):
    """The in-memory state the lifecycle table uses keeps the same contract (a reopen of the
    same path finds the same jobs, as a file would)."""

    opened: ClassVar[dict[Path, MemoryJobState]] = {}

    def open_state(self, path: Path) -> JobState:
        return self.opened.setdefault(path, MemoryJobState())


def test_the_state_makes_its_folder_and_names_a_path_it_cannot_use(tmp_path: Path) -> None:
    async def scenario() -> None:
        state = SqliteJobState(tmp_path / "new" / "nested" / "s.sqlite", random_id)
        await state.close()

    run(scenario())
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateError) as info:
        SqliteJobState(blocker / "s.sqlite", random_id)
    assert info.value.message.startswith(
        f"failed to open the coordinator state `{blocker}/s.sqlite`"
    )
    assert info.value.hint is not None and "`--state`" in info.value.hint


def test_a_state_written_before_native_builds_gains_their_marks(tmp_path: Path) -> None:
    """A jobs table without `native_build`/`native_python` (an older envd's) is upgraded in
    place: its jobs read back unmarked, and a hand-back marks them."""
    path = tmp_path / "old.sqlite"
    state = SqliteJobState(path, random_id)
    run(state.close())
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE jobs DROP COLUMN native_python")
    db.execute("ALTER TABLE jobs DROP COLUMN native_build")
    db.commit()
    db.close()

    async def scenario() -> None:
        old = SqliteJobState(path, random_id)
        job, _ = await old.create_or_attach(new_job(platform="linux-64"), 1.0)
        await old.close()
        db = sqlite3.connect(path)
        columns = {r[1] for r in db.execute("PRAGMA table_info(jobs)")}
        db.close()
        assert {"native_build", "native_python"} <= columns
        state = SqliteJobState(path, random_id)
        try:
            assert (job.native_build, job.native_python) == (None, None)
            leased = await state.lease(job.job_id, "a", 100.0)
            assert leased is not None and leased.lease_id is not None
            marked = await state.requeue(
                job.job_id, 2.0, leased.lease_id, "x 1 (sdist only)", "3.11"
            )
            assert marked is not None and marked.native_python == "3.11"
        finally:
            await state.close()

    run(scenario())
