"""SqliteJobState: single-flight, leases and fencing, restart behaviour."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from envd.daemon.state import Job, JobStatus, SqliteJobState
from envd.errors import JobNotFoundError, StaleLeaseError


@pytest.fixture
def state(tmp_path: Path) -> SqliteJobState:
    counter = itertools.count()
    return SqliteJobState(tmp_path / "state.sqlite", lambda: f"{next(counter):04d}")


def create(
    state: SqliteJobState,
    req_id: str = "r" * 40,
    platform: str = "linux-64",
    no_archives: bool = False,
) -> tuple[Job, bool]:
    return state.create_or_attach(
        req_id=req_id, platform=platform, canonical_spec=b"{}", no_archives=no_archives,
        requester={"user": "u", "host": "h"}, now=100.0,
    )  # fmt: skip


def test_single_flight_per_req_id_and_platform(state: SqliteJobState) -> None:
    first, created = create(state)
    again, created_again = create(state)
    other, created_other = create(state, platform="osx-arm64")
    assert created and not created_again and created_other
    assert again.job_id == first.job_id != other.job_id
    assert first.job_id == "job-0000" and first.status is JobStatus.QUEUED


def test_a_finished_job_does_not_absorb_new_requests(state: SqliteJobState) -> None:
    job, _ = create(state)
    leased = state.lease(job.job_id, "agent", 130.0)
    assert leased is not None and leased.lease_id is not None
    state.complete(leased.lease_id, "f" * 40)
    fresh, created = create(state)
    assert created and fresh.job_id != job.job_id


def test_lease_is_exclusive_and_fenced(state: SqliteJobState) -> None:
    job, _ = create(state)
    leased = state.lease(job.job_id, "a", 130.0)
    assert leased is not None and leased.lease_id is not None
    assert state.lease(job.job_id, "b", 130.0) is None
    assert [j.job_id for j in state.expired(now=131.0)] == [job.job_id]
    state.requeue(job.job_id, now=131.0)
    second = state.lease(job.job_id, "b", 160.0)
    assert second is not None and second.lease_id is not None and second.attempts == 2
    with pytest.raises(StaleLeaseError, match=f"lease `{leased.lease_id}` is no longer valid"):
        state.complete(leased.lease_id, "f" * 40)
    done = state.complete(second.lease_id, "e" * 40)
    assert done.status is JobStatus.DONE and done.full_id == "e" * 40
    with pytest.raises(StaleLeaseError):  # a result can only finish a job once
        state.complete(second.lease_id, "e" * 40)


def test_renew_only_for_current_lease(state: SqliteJobState) -> None:
    job, _ = create(state)
    leased = state.lease(job.job_id, "a", 130.0)
    assert leased is not None and leased.lease_id is not None
    assert state.renew(leased.lease_id, "a", 200.0)
    assert state.expired(now=150.0) == []
    assert not state.renew("lease-unknown", "a", 200.0)


def test_fail_records_the_error(state: SqliteJobState) -> None:
    job, _ = create(state)
    failed = state.fail(job.job_id, {"reference": "E300", "message": "m", "hint": ""})
    assert failed.status is JobStatus.FAILED and failed.error == {
        "reference": "E300", "message": "m", "hint": ""
    }  # fmt: skip


def test_state_survives_reopen_and_restart_regrants_leases(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    state = SqliteJobState(path, lambda: "x")
    job, _ = create(state)
    assert state.lease(job.job_id, "a", 130.0) is not None
    state.close()
    reopened = SqliteJobState(path, lambda: "y")
    assert reopened.get(job.job_id).status is JobStatus.LEASED
    assert reopened.extend_leases_after_restart(expires_at=500.0, now=400.0) == 1
    assert reopened.expired(now=450.0) == []
    with pytest.raises(JobNotFoundError, match="no job `job-nope`"):
        reopened.get("job-nope")


def test_archives_requests_never_attach_to_a_job_without_archives(state: SqliteJobState) -> None:
    bare, _ = create(state, no_archives=True)
    full, created = create(state, no_archives=False)
    assert created and full.job_id != bare.job_id
    attached, created_again = create(state, no_archives=True)  # either job serves it
    assert not created_again and attached.job_id == full.job_id
