"""PostgresJobState against the shared JobState contract (a real server), plus what is its
own: migrations, a newer schema refused, replicas taking over completions."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from envd.clock import random_id
from envd.daemon.state import JobState
from envd.daemon.state_postgres import PostgresJobState
from postgres_server import PostgresServer
from state_conformance import JobStateConformance


class TestPostgresJobState(JobStateConformance):
    @pytest.fixture(autouse=True)
    def _server(self, postgres: PostgresServer) -> None:
        self.postgres = postgres

    def open_state(self, path: Path) -> JobState:
        """One schema per path: a test's reopen finds its jobs, other tests never do."""
        schema = "s" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
        return PostgresJobState(self.postgres.new_schema(schema), random_id, random_id())
