"""`--log-format json`: one object per line, with the job a line concerns; text unchanged."""

from __future__ import annotations

import json
import logging
import sys

from envd.logs import LOG_FORMAT, JobDirectory, JobFields, JsonFormatter, job_task_context

JOB = JobFields("job-1", "a" * 40, "linux-64", "agent-7")


def record(message: str, *args: object, **extra: str) -> logging.LogRecord:
    made = logging.LogRecord("envd.daemon", logging.WARNING, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def fields(line: str) -> dict[str, str]:
    document = json.loads(line)
    return {k: document[k] for k in ("job_id", "req_id", "platform", "agent") if k in document}


def test_text_format_is_the_one_lines_always_had() -> None:
    line = logging.Formatter(LOG_FORMAT).format(record("new job=%s platform=%s", "j", "p"))
    assert line.endswith(" WARNING envd.daemon new job=j platform=p")


def test_json_line_has_time_level_logger_and_message() -> None:
    document = json.loads(JsonFormatter().format(record("agent=%s disconnected", "a1")))
    assert document.pop("time").endswith("Z")
    assert document == {
        "level": "WARNING",
        "logger": "envd.daemon",
        "message": "agent=a1 disconnected",
        "agent": "a1",
    }


def test_a_line_that_names_its_job_carries_every_field_it_says() -> None:
    message = "leased job=%s req_id=%s platform=%s to agent=%s lease=l-1 attempt=1"
    line = JsonFormatter().format(record(message, JOB.job_id, JOB.req_id, JOB.platform, JOB.agent))
    assert fields(line) == JOB.as_dict()


def test_the_directory_fills_in_what_a_line_does_not_repeat() -> None:
    directory = JobDirectory()
    directory.remember(JOB, "lease-9")
    formatter = JsonFormatter(directory)
    failed = formatter.format(record("failed job=%s platform=%s: boom (E200)", "job-1", "linux-64"))
    assert fields(failed) == JOB.as_dict()
    late = formatter.format(record("requeued job=%s lease=%s: gone", "job-1", "lease-9"))
    assert fields(late) == JOB.as_dict()
    by_lease = formatter.format(record("rejected late result from agent=x lease=lease-9"))
    assert fields(by_lease) == {**JOB.as_dict(), "agent": "x"}  # what the line says wins
    directory.forget("job-1")
    assert len(directory) == 0
    assert fields(formatter.format(record("lease=lease-9 revoked"))) == {}


def test_lines_logged_for_a_job_task_carry_it_even_unnamed() -> None:
    formatter = JsonFormatter()
    line = job_task_context(JOB).run(formatter.format, record("fetched x.conda (3 bytes)"))
    assert fields(line) == JOB.as_dict()
    assert fields(formatter.format(record("fetched x.conda (3 bytes)"))) == {}


def test_extra_fields_and_exceptions() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        made = record("job=%s crashed", "job-2", **JOB.as_dict())
        made.exc_info = sys.exc_info()
    document = json.loads(JsonFormatter().format(made))
    assert fields(json.dumps(document)) == JOB.as_dict()  # `extra=` wins over the words
    assert document["exception"].splitlines()[-1] == "ValueError: bad"


def test_merged_keeps_what_is_known() -> None:
    partial = JobFields(job_id="job-1", platform="osx-arm64")
    assert partial.merged(JOB) == JobFields("job-1", JOB.req_id, "osx-arm64", "agent-7")
    assert partial.merged(None) is partial
