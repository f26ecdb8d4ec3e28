"""Process-level logging setup shared by the thin mains (daemon, agent, client): the text
format, and `--log-format json` whose lines carry the job they concern."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Callable
from contextvars import Context, ContextVar, copy_context
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any, Literal

from envd.redaction import mask_text

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
# `key=value` as the text lines write them (`leased job=… req_id=… platform=… to agent=…`)
_TOKEN = re.compile(r"(?<![\w-])(job|req_id|platform|agent|lease)=([^\s,;:()`'\"]+)")
_TOKEN_FIELDS = {"job": "job_id", "req_id": "req_id", "platform": "platform", "agent": "agent"}


@dataclass(frozen=True, slots=True)
class JobFields:
    """What a JSON line says about the job it concerns, so one job can be followed across the
    coordinator and its agents; empty strings are not known (and not written)."""

    job_id: str = ""
    req_id: str = ""
    platform: str = ""
    agent: str = ""

    def merged(self, fallback: JobFields | None) -> JobFields:
        """These fields, the missing ones taken from `fallback`."""
        if fallback is None:
            return self
        return replace(self, **{f.name: getattr(fallback, f.name) for f in fields(self)
                                if not getattr(self, f.name)})  # fmt: skip

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}


_current_job: ContextVar[JobFields | None] = ContextVar("envd_current_job", default=None)


def job_task_context(job: JobFields) -> Context:
    """A copy of the current context in which lines concern `job`: for the task that runs it
    (`asyncio.create_task(..., context=...)`)."""
    context = copy_context()
    context.run(_current_job.set, job)
    return context


class JobDirectory:
    """The jobs a process has in flight, by job id and lease id: fills in the fields a line
    does not repeat (`failed job=…` names no agent). Written on one thread (the coordinator's
    event loop, where its jobs change); a read is one dict look-up, safe from any thread."""

    def __init__(self) -> None:
        self._jobs: dict[str, tuple[JobFields, str]] = {}
        self._leases: dict[str, str] = {}

    def remember(self, job: JobFields, lease_id: str = "") -> None:
        """`job` as it stands now, under `lease_id` (its current lease, if any)."""
        self.forget(job.job_id)
        self._jobs[job.job_id] = (job, lease_id)
        if lease_id:
            self._leases[lease_id] = job.job_id

    def forget(self, job_id: str) -> None:
        _, lease_id = self._jobs.pop(job_id, (None, ""))
        self._leases.pop(lease_id, None)

    def find(self, job_id: str = "", lease_id: str = "") -> JobFields | None:
        found = self._jobs.get(job_id or self._leases.get(lease_id, ""))
        return None if found is None else found[0]

    def __len__(self) -> int:
        return len(self._jobs)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then `job_id`, `req_id`,
    `platform` and `agent` where the line concerns a job. Those come from, first to last: the
    record's own attributes (`extra=`), the line's `key=value` words, the job the logging task
    works for (`job_task_context`), and `directory`."""

    def __init__(self, directory: JobDirectory | None = None) -> None:
        super().__init__()
        self.directory = directory

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        document.update(self._job(record, message).as_dict())
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, ensure_ascii=False)

    def _job(self, record: logging.LogRecord, message: str) -> JobFields:
        words = dict(_TOKEN.findall(message))
        said = JobFields(**{
            name: str(getattr(record, name, "") or words.get(token, ""))
            for token, name in _TOKEN_FIELDS.items()
        })  # fmt: skip
        job = said.merged(_current_job.get())
        if self.directory is not None and (job.job_id or "lease" in words):
            job = job.merged(self.directory.find(job.job_id, words.get("lease", "")))
        return job


def add_log_format_argument(parser: argparse.ArgumentParser) -> None:
    """`--log-format text|json`, the same on the daemon and the agent."""
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="`json`: one object per line, with job_id, req_id, platform and agent on the "
        "lines about a job (default %(default)s)",
    )


def configure_logging(
    level: str | int, log_format: LogFormat = "text", directory: JobDirectory | None = None
) -> None:
    """Logs go to stderr: stdout belongs to results (and to `--json` documents). `directory`
    completes the job fields of JSON lines."""
    if log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter(directory))
        logging.basicConfig(level=level, handlers=[handler])
    else:
        logging.basicConfig(level=level, stream=sys.stderr, format=LOG_FORMAT)


def report_error(message: str, hint: str | None, style: Callable[[str], str] = str) -> None:
    """The one way a command line prints a user error: `error: …` then `hint: …`; `style`
    draws those two words (a terminal's colours). A URL's password in them (a PyPI index
    quoted from a requirements file) is masked."""
    print(f"{style('error:')} {mask_text(message)}", file=sys.stderr)
    if hint:
        print(f"{style('hint:')} {mask_text(hint)}", file=sys.stderr)
