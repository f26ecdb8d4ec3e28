"""What results look like: the JSON contract and the human summary."""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime
from typing import Any

import lock_envs
import pytest
from lock_envs import built_wheel, packages, spec

from envd.client.api import ResolveResult
from envd.client.colour import Palette
from envd.client.render import (
    environment_text,
    print_json,
    result_json,
    result_text,
    summary_text,
)
from envd.description import ResolvedBy, ResolvedPackage, SolverInfo, build_description
from envd.errors import PackageNotFoundError
from envd.progress import Outcome, ResolveEvent, Stage

REQ = "a" * 40
FULL = "b" * 40


def description() -> dict[str, Any]:
    package = {
        "kind": "conda", "name": "zlib", "version": "1.3", "build": "h0_0",
        "filename": "zlib-1.3-h0_0.conda", "url": "https://x/zlib-1.3-h0_0.conda",
        "sha256": "c" * 64, "depends": [], "formats": [],
    }  # fmt: skip
    return {"packages": [package]}


def result() -> ResolveResult:
    done = ResolveEvent(REQ, "linux-64", Stage.DONE, outcome=Outcome.CACHE_HIT, full_id=FULL,
                        description=description())  # fmt: skip
    failed = ResolveEvent(REQ, "osx-arm64", Stage.FAILED, job_id="job-1", outcome=Outcome.FAILED,
                          error=PackageNotFoundError("package `x` not found", "check the name"))  # fmt: skip
    return ResolveResult(REQ, {"linux-64": done, "osx-arm64": failed})


def test_json_document_fields() -> None:
    assert result_json(result()) == {
        "req_id": REQ,
        "environments": [
            {
                "platform": "linux-64", "full_id": FULL, "outcome": "cache_hit",
                "status": "done", "job_id": None,
                "packages": [{
                    "name": "zlib", "version": "1.3", "build": "h0_0", "kind": "conda",
                    "filename": "zlib-1.3-h0_0.conda", "url": "https://x/zlib-1.3-h0_0.conda",
                    "sha256": "c" * 64,
                }],
            },
            {
                "platform": "osx-arm64", "full_id": None, "outcome": "failed",
                "status": "failed", "job_id": "job-1", "packages": [],
                "error": {"reference": "E200", "message": "package `x` not found",
                          "hint": "check the name"},
            },
        ],
    }  # fmt: skip


def test_summary_lists_each_platform_last() -> None:
    assert summary_text(result()) == (
        f"\n### Summary ###\nlinux-64   cache_hit  {REQ}:{FULL}\nosx-arm64  failed     job-1\n"
    )


def test_summary_with_times_and_colour() -> None:
    running = ResolveEvent(REQ, "win-64", Stage.ACCEPTED, job_id="job-2", outcome=Outcome.DEDUP)
    res = result()
    res.events["win-64"] = running
    text = summary_text(res, {"linux-64": 0.01, "osx-arm64": 2.5}, Palette(True))
    assert text == (
        "\n### Summary ###\n"
        "linux-64   \033[32;1mcache_hit\033[0m" + " " * 13 + f"           {REQ}:{FULL}\n"
        "osx-arm64  \033[31;1mfailed\033[0m" + " " * 16 + "    2.5 s  job-1\n"
        "win-64     joined a job in flight           job-2\n"
    )


def test_result_text_prints_an_error_once_and_quiet_prints_the_summary_alone() -> None:
    accepted = ResolveEvent(REQ, "win-64", Stage.ACCEPTED, job_id="job-2", outcome=Outcome.RESOLVED)
    res = ResolveResult(REQ, {"osx-arm64": result().events["osx-arm64"], "win-64": accepted})
    assert result_text(res) == (
        "### Environment for osx-arm64 ###\nOutcome: failed\n"
        "error: package `x` not found\nhint: check the name\n"
        "\n### Environment for win-64 ###\nStatus: new job, accepted\n"
        "Job: job-2  (follow it with `envd-client wait job-2`)\n"
        "\n### Summary ###\nosx-arm64  failed     job-1\nwin-64     new job    job-2\n"
    )
    assert result_text(res, quiet=True) == (
        "error: osx-arm64: package `x` not found\nhint: check the name\n"
        "osx-arm64  failed     job-1\nwin-64     new job    job-2\n"
    )


def with_a_built_wheel() -> tuple[ResolvedPackage, dict[str, Any]]:
    """An osx-arm64 description whose `crcmod` is a wheel envd built from its sdist."""
    crcmod = built_wheel("crcmod", "1.7", "osx-arm64", "ab" * 32)
    doc = build_description(
        req_id="e" * 40, platform="osx-arm64", spec=spec(),
        packages=[*packages("osx-arm64"), crcmod], resolved_at=datetime(2024, 6, 1, tzinfo=UTC),
        resolved_by=ResolvedBy("t", "a", "h"), solver=SolverInfo("s", "0"),
    )  # fmt: skip
    return crcmod, doc


def test_show_names_the_source_and_agent_of_a_wheel_envd_built() -> None:
    crcmod, doc = with_a_built_wheel()
    assert crcmod.built is not None
    text = environment_text(doc, "resolved")
    assert text.endswith(
        "Built by envd (1):\n"
        "  crcmod  1.7  agent mac-1  from https://files.example.invalid/crcmod-1.7.tar.gz  "
        f"sha256 {crcmod.built.sha256[:12]}\n"
    ), text
    assert "Built by envd" not in environment_text(lock_envs.description("osx-arm64"), "resolved")


def test_json_lists_the_source_of_a_wheel_envd_built_and_nothing_for_the_others() -> None:
    """`resolve --json` packages[]: a wheel envd built carries `built` (its source URL, the
    source's sha256 that full_id counts, agent, platform) as `show`'s description does."""
    crcmod, doc = with_a_built_wheel()
    event = ResolveEvent("e" * 40, "osx-arm64", Stage.DONE, outcome=Outcome.RESOLVED,
                         full_id=doc["full_id"], description=doc)  # fmt: skip
    rows = result_json(ResolveResult("e" * 40, {"osx-arm64": event}))["environments"][0]
    by_name = {row["name"]: row for row in rows["packages"]}
    assert crcmod.built is not None
    assert by_name["crcmod"]["built"] == {
        "source": "https://files.example.invalid/crcmod-1.7.tar.gz",
        "sha256": crcmod.built.sha256, "agent": "mac-1", "platform": "osx-arm64",
    }  # fmt: skip
    assert by_name["crcmod"]["sha256"] == "ab" * 32  # the wheel's own, to verify the download
    assert [name for name, row in by_name.items() if "built" in row] == ["crcmod"]


def test_json_goes_to_sys_stdout_as_it_is_when_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A program embedding the client (or a test) that redirects `sys.stdout` gets the JSON,
    as it gets the text output, which `print` writes there."""
    redirected = io.StringIO()
    monkeypatch.setattr(sys, "stdout", redirected)
    print_json({"req_id": REQ, "url": "https://user:secret@x.invalid/simple"})
    assert json.loads(redirected.getvalue()) == {
        "req_id": REQ, "url": "https://user:***@x.invalid/simple",
    }  # fmt: skip
    elsewhere = io.StringIO()
    print_json([1], elsewhere)
    assert elsewhere.getvalue() == "[\n  1\n]\n"


def test_show_names_find_links_pages_after_the_indexes() -> None:
    description = lock_envs.environment()["linux-64"]
    linked = {**description, "spec": {**description["spec"], "pypi_find_links": ["https://l.ex/"]}}
    assert f"PyPI indexes: {lock_envs.INDEX}; find-links: https://l.ex/\n" in environment_text(
        linked, "resolved"
    )
    assert "find-links" not in environment_text(description, "resolved")
