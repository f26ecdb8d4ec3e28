"""The one `JobState` contract suite: every state store (SQLite now, PostgreSQL next) runs it.

A backend's test module subclasses `JobStateConformance` and provides `open_state(path)`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import pytest

from envd.daemon.state import Job, JobState, JobStatus, NewJob
from envd.errors import JobNotFoundError

T = TypeVar("T")
ERROR = {"reference": "E300", "message": "m", "hint": ""}


def run(awaitable: Awaitable[T]) -> T:
    async def main() -> T:
        return await awaitable

    return asyncio.run(main())


def new_job(
    req_id: str = "r" * 40, platform: str = "linux-64", no_archives: bool = False
) -> NewJob:
    return NewJob(req_id, platform, b"{}", no_archives, {"user": "u", "host": "h"})


class JobStateConformance:
    def open_state(self, path: Path) -> JobState:
        raise NotImplementedError

    def check(self, tmp_path: Path, scenario: object) -> None:
        """Run `scenario(state)` (a coroutine function) against a fresh state, then close it."""

        async def main() -> None:
            state = self.open_state(tmp_path / "state.sqlite")
            try:
                await scenario(state)  # type: ignore[operator]
            finally:
                await state.close()

        asyncio.run(main())

    def test_single_flight_per_req_id_and_platform(self, tmp_path: Path) -> None:
        async def scenario(state: JobState) -> None:
            first, created = await state.create_or_attach(new_job(), 100.0)
            again, created_again = await state.create_or_attach(new_job(), 101.0)
            other, created_other = await state.create_or_attach(new_job(platform="osx-64"), 1.0)
            assert created and not created_again and created_other
            assert again.job_id == first.job_id != other.job_id
            assert first.status is JobStatus.QUEUED and first.attempts == 0

        self.check(tmp_path, scenario)

    def test_concurrent_creates_give_one_job(self, tmp_path: Path) -> None:
        async def scenario(state: JobState) -> None:
            results = await asyncio.gather(
                *(state.create_or_attach(new_job(), 1.0) for _ in range(50))
            )
            assert len({job.job_id for job, _ in results}) == 1
            assert sum(created for _, created in results) == 1

        self.check(tmp_path, scenario)

    def test_a_finished_job_does_not_absorb_new_requests(self, tmp_path: Path) -> None:
        async def scenario(state: JobState) -> None:
            job, _ = await state.create_or_attach(new_job(), 100.0)
            leased = await _lease(state, job, "agent", 130.0)
            assert await state.begin_completion(_lid(leased), "f" * 40, 120.0) is not None
            done = await state.complete(job.job_id, "f" * 40)
            assert done is not None and done.status is JobStatus.DONE and done.lease_id is None
            fresh, created = await state.create_or_attach(new_job(), 200.0)
            assert created and fresh.job_id != job.job_id

        self.check(tmp_path, scenario)

    def test_lease_is_exclusive_and_fenced(self, tmp_path: Path) -> None:
        async def scenario(state: JobState) -> None:
            job, _ = await state.create_or_attach(new_job(), 100.0)
            first = await _lease(state, job, "a", 130.0)
            assert first.attempts == 1 and first.agent_id == "a"
            assert await state.lease(job.job_id, "b", 130.0) is None
            assert [j.job_id for j in await state.expired(131.0)] == [job.job_id]
            assert await state.expired(129.0) == []
            requeued = await state.requeue(job.job_id, 131.0, lease_id=first.lease_id)
            assert requeued is not None and requeued.status is JobStatus.QUEUED
            assert requeued.lease_id is None and requeued.queued_at == 131.0
            second = await _lease(state, job, "b", 160.0)
            assert second.attempts == 2 and second.lease_id != first.lease_id
            # the first lease is no longer a fencing token for anything
            assert await state.by_lease(_lid(first)) is None
            assert await state.begin_completion(_lid(first), "f" * 40, 140.0) is None
            assert await state.fail(job.job_id, ERROR, lease_id=first.lease_id) is None
            assert await state.requeue(job.job_id, 140.0, lease_id=first.lease_id) is None
            assert (await state.get(job.job_id)).status is JobStatus.LEASED

        self.check(tmp_path, scenario)

    def test_completion_needs_an_unexpired_lease_and_blocks_expiry(self, tmp_path: Path) -> None:
        async def scenario(state: JobState) -> None:
            job, _ = await state.create_or_attach(new_job(), 100.0)
            leased = await _lease(state, job, "a", 130.0)
            assert await state.begin_completion(_lid(leased), "f" * 40, 130.5) is None
            completing = await state.begin_completion(_lid(leased), "f" * 40, 129.0)
            assert completing is not None and completing.status is JobStatus.COMPLETING
            assert completing.full_id == "f" * 40
            assert await state.expired(1000.0) == []  # the sweep leaves it alone
            assert [j.job_id for j in await state.completing()] == [job.job_id]
            assert await state.by_lease(_lid(leased)) is not None
            assert await state.renew([_lid(leased)], 2000.0) == set()  # not renewable
            done = await state.complete(job.job_id, "f" * 40)
            assert done is not None and done.status is JobStatus.DONE
            assert await state.complete(job.job_id, "f" * 40) is None  # exactly once

        self.check(tmp_path, scenario)

    def test_a_completing_job_goes_back_only_without_a_lease(self, tmp_path: Path) -> None:
        """The coordinator gives a completing job back (store down); an agent's lease no
        longer counts once its result was accepted."""

        async def scenario(state: JobState) -> None:
            job, _ = await state.create_or_attach(new_job(), 100.0)
            leased = await _lease(state, job, "a", 130.0)
            await state.begin_completion(_lid(leased), "f" * 40, 110.0)
            assert await state.requeue(job.job_id, 120.0, lease_id=leased.lease_id) is None
            assert await state.fail(job.job_id, ERROR, lease_id=leased.lease_id) is None
            back = await state.requeue(job.job_id, 120.0)
            assert back is not None and back.status is JobStatus.QUEUED and back.full_id is None

        self.check(tmp_path, scenario)

    def test_complete_needs_completing(self, tmp_path: Path) -> None:
        async def scenario(state: JobState) -> None:
            job, _ = await state.create_or_attach(new_job(), 100.0)
            assert await state.complete(job.job_id, "f" * 40) is None
            await _lease(state, job, "a", 130.0)
            assert await state.complete(job.job_id, "f" * 40) is None
            assert (await state.get(job.job_id)).status is JobStatus.LEASED

        self.check(tmp_path, scenario)

    def test_renew_only_current_leases(self, tmp_path: Path) -> None:
        async def scenario(state: JobState) -> None:
            job, _ = await state.create_or_attach(new_job(), 100.0)
            other, _ = await state.create_or_attach(new_job(platform="osx-64"), 100.0)
            leased = await _lease(state, job, "a", 130.0)
            leased_other = await _lease(state, other, "a", 130.0)
            renewed = await state.renew([_lid(leased), "lease-unknown", _lid(leased)], 200.0)
            assert renewed == {leased.lease_id}
            assert [j.job_id for j in await state.expired(150.0)] == [other.job_id]
            many = [f"lease-{i}" for i in range(1200)] + [_lid(leased_other)]
            assert await state.renew(many, 300.0) == {leased_other.lease_id}
            assert await state.expired(199.0) == []

        self.check(tmp_path, scenario)

    def test_fail_and_cancel_record_the_error_once(self, tmp_path: Path) -> None:
        async def scenario(state: JobState) -> None:
            job, _ = await state.create_or_attach(new_job(), 100.0)
            failed = await state.fail(job.job_id, ERROR)
            assert failed is not None and failed.status is JobStatus.FAILED
            assert failed.error == ERROR and failed.finished
            assert await state.fail(job.job_id, ERROR) is None
            assert await state.cancel(job.job_id, ERROR) is None
            other, _ = await state.create_or_attach(new_job(platform="osx-64"), 100.0)
            cancelled = await state.cancel(other.job_id, ERROR)
            assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
            assert cancelled.finished and cancelled.error == ERROR

        self.check(tmp_path, scenario)

    def test_queued_lists_only_queued_jobs_of_the_platforms(self, tmp_path: Path) -> None:
        async def scenario(state: JobState) -> None:
            jobs = {}
            for i, platform in enumerate(["linux-64", "osx-64", "win-64", "linux-64"]):
                jobs[i], _ = await state.create_or_attach(
                    new_job(req_id=str(i) * 40, platform=platform), 100.0 + i
                )
            await _lease(state, jobs[0], "a", 500.0)
            linux = await state.queued(["linux-64"], 10)
            assert [j.job_id for j in linux] == [jobs[3].job_id]
            two = await state.queued(["osx-64", "win-64", "linux-64"], 2)
            assert [j.job_id for j in two] == [jobs[1].job_id, jobs[2].job_id]
            assert await state.queued([], 10) == []
            before = await state.queued_before(101.0)
            assert [j.job_id for j in before] == [jobs[1].job_id]

        self.check(tmp_path, scenario)

    def test_a_native_only_job_is_listed_only_for_its_native_platform(self, tmp_path: Path) -> None:
        async def scenario(state: JobState) -> None:
            job, _ = await state.create_or_attach(new_job(platform="osx-arm64"), 100.0)
            other, _ = await state.create_or_attach(new_job("o" * 40, "osx-arm64"), 101.0)
            leased = await _lease(state, job, "linux", 500.0)
            assert (
                await state.requeue(job.job_id, 200.0, "lease-not-it", "x 1 (sdist only)") is None
            )
            queued = await state.requeue(job.job_id, 200.0, _lid(leased), "crcmod 1.7 (sdist only)")
            assert queued is not None and queued.native_build == "crcmod 1.7 (sdist only)"
            assert queued.status is JobStatus.QUEUED and queued.queued_at == 200.0
            assert other.native_build is None
            ids = [j.job_id for j in await state.queued(["osx-arm64"], 10)]
            assert ids == [other.job_id]  # not native: only the unmarked job
            ids = [j.job_id for j in await state.queued(["osx-arm64"], 10, "linux-64")]
            assert ids == [other.job_id]
            ids = [j.job_id for j in await state.queued(["osx-arm64"], 10, "osx-arm64")]
            assert ids == [job.job_id, other.job_id]
            # the mark outlives a lease that expires and a requeue without it
            again = await _lease(state, queued, "mac", 600.0)
            requeued = await state.requeue(job.job_id, 300.0)
            assert requeued is not None and requeued.native_build == "crcmod 1.7 (sdist only)"
            assert (await state.get(job.job_id)).native_build == "crcmod 1.7 (sdist only)"
            assert again.native_build == "crcmod 1.7 (sdist only)"

        self.check(tmp_path, scenario)

    def test_a_native_only_job_for_a_python_is_listed_only_for_agents_building_it(
        self, tmp_path: Path
    ) -> None:
        async def scenario(state: JobState) -> None:
            job, _ = await state.create_or_attach(new_job(platform="linux-64"), 100.0)
            plain, _ = await state.create_or_attach(new_job("p" * 40, "linux-64"), 101.0)
            leased = await _lease(state, job, "linux-old", 500.0)
            queued = await state.requeue(
                job.job_id, 200.0, _lid(leased), "crcmod 1.7 (sdist only)", "3.12"
            )
            assert queued is not None and queued.native_python == "3.12"
            assert plain.native_python is None
            natives = {
                (): [plain.job_id],
                ("3.11",): [plain.job_id],
                ("3.11", "3.12"): [job.job_id, plain.job_id],
            }
            for pythons, expected in natives.items():
                listed = await state.queued(["linux-64"], 10, "linux-64", pythons)
                assert [j.job_id for j in listed] == expected, pythons
            # a non-native agent never gets it, whatever it builds for
            listed = await state.queued(["linux-64"], 10, "osx-arm64", ("3.12",))
            assert [j.job_id for j in listed] == [plain.job_id]
            # the python mark outlives a requeue without it, as the build mark does
            again = await _lease(state, queued, "linux-new", 600.0)
            assert again.native_python == "3.12"
            requeued = await state.requeue(job.job_id, 300.0)
            assert requeued is not None and requeued.native_python == "3.12"
            assert (await state.get(job.job_id)).native_python == "3.12"

        self.check(tmp_path, scenario)

    def test_archives_requests_never_attach_to_a_job_without_archives(self, tmp_path: Path) -> None:
        async def scenario(state: JobState) -> None:
            bare, _ = await state.create_or_attach(new_job(no_archives=True), 1.0)
            full, created = await state.create_or_attach(new_job(no_archives=False), 1.0)
            assert created and full.job_id != bare.job_id
            attached, created_again = await state.create_or_attach(new_job(no_archives=True), 1.0)
            assert not created_again and attached.job_id == full.job_id

        self.check(tmp_path, scenario)

    def test_unknown_job(self, tmp_path: Path) -> None:
        async def scenario(state: JobState) -> None:
            with pytest.raises(JobNotFoundError, match="no job `job-nope`"):
                await state.get("job-nope")

        self.check(tmp_path, scenario)

    def test_state_survives_reopen_and_restart_regrants_or_requeues(self, tmp_path: Path) -> None:
        path = tmp_path / "state.sqlite"

        async def first_run() -> tuple[str, str]:
            state = self.open_state(path)
            job, _ = await state.create_or_attach(new_job(), 100.0)
            other, _ = await state.create_or_attach(new_job(platform="osx-64"), 100.0)
            await _lease(state, job, "a", 130.0)
            await state.close()
            return job.job_id, other.job_id

        leased_id, queued_id = run(first_run())

        async def second_run(requeue: bool) -> None:
            state = self.open_state(path)
            assert (await state.get(queued_id)).status is JobStatus.QUEUED
            assert await state.recover_after_restart(500.0, 400.0, requeue=requeue) == 1
            assert await state.expired(450.0) == []
            assert (await state.get(queued_id)).queued_at == 400.0
            status = (await state.get(leased_id)).status
            assert status is (JobStatus.QUEUED if requeue else JobStatus.LEASED)
            await state.close()

        run(second_run(False))
        run(second_run(True))


async def _lease(state: JobState, job: Job, agent: str, expires: float) -> Job:
    leased = await state.lease(job.job_id, agent, expires)
    assert leased is not None and leased.status is JobStatus.LEASED
    assert leased.lease_id is not None
    return leased


def _lid(job: Job) -> str:
    assert job.lease_id is not None
    return job.lease_id
