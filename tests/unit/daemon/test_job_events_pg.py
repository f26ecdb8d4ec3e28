"""PostgresJobEvents between two replicas on one real PostgreSQL: NOTIFY carries events,
descriptions are re-read, and a terminal event NOTIFY lost is made good from the state."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from envd.clock import random_id
from envd.daemon import job_events_pg
from envd.daemon.job_events import job_event
from envd.daemon.job_events_pg import PostgresJobEvents
from envd.daemon.state_postgres import PostgresJobState
from envd.errors import NoAgentForPlatformError
from envd.progress import Outcome, Stage
from postgres_server import PostgresServer
from state_conformance import new_job, run

DESCRIPTION = {"packages": [], "note": "read from the store"}


def read_description(req_id: str, platform: str, full_id: str) -> dict[str, Any]:
    return {**DESCRIPTION, "full_id": full_id}


def test_events_cross_replicas_and_lost_terminal_events_are_reread(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_events_pg, "_RECONCILE_INTERVAL", 0.2)
    url = postgres.new_schema()

    async def scenario() -> None:
        state_a = PostgresJobState(url, random_id, "a")
        state_b = PostgresJobState(url, random_id, "b")
        a, b = PostgresJobEvents(state_a), PostgresJobEvents(state_b)
        tasks = [asyncio.create_task(e.run(read_description)) for e in (a, b)]
        try:
            job, _ = await state_a.create_or_attach(new_job(), 1.0)
            other, _ = await state_a.create_or_attach(new_job(platform="osx-64"), 1.0)
            following = b.subscribe({job.job_id, other.job_id})
            progress = None
            while progress is None:  # until both listen: progress may be sent again
                a.publish(job_event(job, Stage.RESOLVING, message="solving", agent="x"))
                with contextlib.suppress(TimeoutError):
                    progress = await asyncio.wait_for(following.get(), 0.5)
            a.publish(job_event(job, Stage.DONE, outcome=Outcome.RESOLVED, full_id="f" * 40,
                                description={"big": "x" * 9000}))  # fmt: skip
            assert (progress.stage, progress.message, progress.agent) == (
                Stage.RESOLVING, "solving", "x",
            )  # fmt: skip
            done = await asyncio.wait_for(following.get(), 5)
            while done.stage is Stage.RESOLVING:  # a repeat of the progress above
                done = await asyncio.wait_for(following.get(), 5)
            assert done.stage is Stage.DONE and done.job_id == job.job_id
            assert done.description == {**DESCRIPTION, "full_id": "f" * 40}
            # a replica died between its state write and its NOTIFY: b re-reads the state
            err = NoAgentForPlatformError("no agent serving `osx-64`", hint="start one")
            await state_a.fail(other.job_id, {"reference": err.reference,
                                              "message": err.message, "hint": "start one"})  # fmt: skip
            failed = await asyncio.wait_for(following.get(), 5)
            assert failed.stage is Stage.FAILED and failed.job_id == other.job_id
            assert isinstance(failed.error, NoAgentForPlatformError)
            b.unsubscribe(following)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await state_a.close()
            await state_b.close()

    run(scenario())
