"""What results look like: the JSON contract and the human summary."""

from __future__ import annotations

from typing import Any

from envd.client.api import ResolveResult
from envd.client.render import result_json, summary_text
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
