"""The coordinator's side of `--log-format json`: a `JobHook` that keeps the log's job directory
current, so a line that names only a job or a lease still carries its req_id, platform and
agent."""

from __future__ import annotations

from envd.logs import JobDirectory, JobFields

from .jobs import JobHook, Transition
from .state import Job


def directory_hook(directory: JobDirectory) -> JobHook:
    """Runs after each transition's log line: a job's last line still finds it."""

    def hook(transition: Transition, job: Job, /) -> None:
        if transition in (Transition.EXPIRED, Transition.REJECTED):
            return  # no write: the job is as the directory has it
        if job.finished:
            directory.forget(job.job_id)
        else:
            fields = JobFields(job.job_id, job.req_id, job.platform, job.agent_id or "")
            directory.remember(fields, job.lease_id or "")

    return hook


def chain(*hooks: JobHook) -> JobHook:
    """One hook calling each of `hooks` in turn."""
    if len(hooks) == 1:
        return hooks[0]

    def hook(transition: Transition, job: Job, /) -> None:
        for each in hooks:
            each(transition, job)

    return hook
