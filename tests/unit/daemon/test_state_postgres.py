"""PostgresJobState against the shared JobState contract (a real server), plus what is its
own: migrations, a newer schema refused, replicas taking over completions."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
import pytest

from envd.clock import random_id
from envd.daemon.state import JobState, JobStatus
from envd.daemon.state_postgres import PostgresJobState, display_url
from envd.daemon.state_postgres_schema import LATEST
from envd.errors import StateError
from postgres_server import PostgresServer
from state_conformance import JobStateConformance, new_job, run


class TestPostgresJobState(JobStateConformance):
    @pytest.fixture(autouse=True)
    def _server(self, postgres: PostgresServer) -> None:
        self.postgres = postgres

    def open_state(self, path: Path) -> JobState:
        """One schema per path: a test's reopen finds its jobs, other tests never do."""
        schema = "s" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
        return PostgresJobState(self.postgres.new_schema(schema), random_id, random_id())


def _state(url: str, replica: str = "") -> PostgresJobState:
    return PostgresJobState(url, random_id, replica or random_id())


def test_migrations_apply_once_and_a_newer_schema_is_refused(postgres: PostgresServer) -> None:
    url = postgres.new_schema()
    run(_state(url).close())
    run(_state(url).close())  # a second replica (or restart) applies nothing
    with psycopg.connect(url, autocommit=True) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM envd_schema_version")]
        assert versions == list(range(1, LATEST + 1))
        conn.execute("INSERT INTO envd_schema_version (version) VALUES (%s)", (LATEST + 1,))
    with pytest.raises(StateError, match=rf"its schema is version {LATEST + 1}, newer than"):
        _state(url)


def test_an_unreachable_database_is_a_clear_error_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql://envd:s3cret@/envd?host={tmp_path}&connect_timeout=2"
    with pytest.raises(StateError) as info:
        _state(url)
    assert info.value.message.startswith(
        f"failed to open the coordinator state `postgresql://envd@{tmp_path}/envd`: "
    )
    assert "s3cret" not in info.value.message and display_url(url).count("s3cret") == 0


def _set_replica(url: str, replica: str, alive: bool) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO replicas (replica_id, expires_at) VALUES (%s, now() + %s)"
            " ON CONFLICT (replica_id) DO UPDATE SET expires_at = excluded.expires_at",
            (replica, "1 hour" if alive else "-1 second"),
        )


def test_a_dead_replicas_completion_is_taken_over_once(postgres: PostgresServer) -> None:
    url = postgres.new_schema()

    async def scenario() -> None:
        first, second, third = _state(url, "a"), _state(url, "b"), _state(url, "c")
        job, _ = await first.create_or_attach(new_job(), 100.0)
        leased = await first.lease(job.job_id, "agent", 130.0)
        assert leased is not None and leased.lease_id is not None
        assert await first.begin_completion(leased.lease_id, "f" * 40, 120.0) is not None
        _set_replica(url, "a", alive=True)
        assert await second.adopt_orphaned_completions() == []
        assert await second.completing() == []  # replica a is finishing it
        _set_replica(url, "a", alive=False)
        _set_replica(url, "b", alive=True)
        adopted = await second.adopt_orphaned_completions()
        assert [j.job_id for j in adopted] == [job.job_id]
        assert await third.adopt_orphaned_completions() == []  # b is alive and has it
        assert await second.complete(job.job_id, "f" * 40) is not None
        assert await first.complete(job.job_id, "f" * 40) is None  # exactly once
        for state in (first, second, third):
            await state.close()

    run(scenario())


def test_restart_recovery_leaves_a_running_fleet_alone(postgres: PostgresServer) -> None:
    url = postgres.new_schema()

    async def scenario() -> None:
        state = _state(url, "joining")
        job, _ = await state.create_or_attach(new_job(), 100.0)
        await state.lease(job.job_id, "agent", 130.0)
        _set_replica(url, "running", alive=True)
        assert await state.recover_after_restart(500.0, 400.0, requeue=True) == 0
        assert (await state.get(job.job_id)).status is JobStatus.LEASED
        _set_replica(url, "running", alive=False)  # the whole fleet was down
        assert await state.recover_after_restart(500.0, 400.0, requeue=True) == 1
        assert (await state.get(job.job_id)).status is JobStatus.QUEUED
        await state.close()

    run(scenario())
