"""SqliteJobState against the shared JobState contract, plus what is SQLite's own."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from envd.clock import random_id
from envd.daemon.state import JobState
from envd.daemon.state_sqlite import SqliteJobState
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
        await state.get(job.job_id)
        await state.close()

    run(scenario())
    assert seen and all(name.startswith("envd-state") for name in seen)
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
