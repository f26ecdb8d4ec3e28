"""`list` rows: short ids, aligned columns, what was asked for in short."""

from __future__ import annotations

from typing import Any

from envd.catalog import EnvironmentSummary
from envd.client.listing import (
    Listed,
    archives_word,
    list_json,
    list_text,
    lock_line,
    lock_platforms,
    requested,
    type_word,
)

REQ, FULL = "1f0e3dad99" + "0" * 30, "b" * 40
SPEC = {
    "format": "envd-spec-v1",
    "python": "3.11.*",
    "conda": [
        {"name": "numpy", "spec": "numpy >=1.20", "category": "main", "selector": None},
        {"name": "libcxx", "spec": "libcxx", "category": "main", "selector": "osx"},
    ],
    "pypi": [{"name": "rich", "requirement": "rich", "category": "main", "selector": None}],
    "channels": ["https://conda.anaconda.org/conda-forge"],
}


def description(formats: list[list[str]]) -> dict[str, Any]:
    packages = [{"name": f"p{i}", "formats": [{"format": f} for f in fs]}
                for i, fs in enumerate(formats)]  # fmt: skip
    return {
        "env_type": "mixed",
        "packages": packages,
        "resolved_by": {"user": "ada", "agent": "a1", "host": "h"},
        "spec": SPEC,
    }


def test_requested_in_short() -> None:
    assert requested(SPEC, limit=200) == "python 3.11.*, numpy >=1.20, libcxx [osx], pypi:rich"
    assert requested(SPEC, limit=30) == "python 3.11.*, numpy >=1.20, +2 more"
    assert requested({"conda": []}) == "-"


def test_archives_word() -> None:
    assert archives_word(description([[".conda"], [".tar.bz2", ".conda"]])) == "cached"
    assert archives_word(description([[".conda"], []])) == "1/2"
    assert archives_word(description([[], []])) == "none"


def test_rows_align_and_name_the_store_when_empty() -> None:
    rows = [
        Listed(EnvironmentSummary(REQ, "linux-64", FULL, "2026-12-04T23:48:09.5Z", True),
               description([[".conda"]] * 12)),
        Listed(EnvironmentSummary(REQ, "osx-arm64", FULL, "2026-12-05T01:02:03Z", False),
               description([[]])),
    ]  # fmt: skip
    asked = "python 3.11.*, numpy >=1.20, libcxx [osx], +1 more"
    assert list_text(rows, "file:///s") == (
        "REQ_ID        PLATFORM   TYPE   PKGS  ARCHIVES  RESOLVED              BY   DEFAULT  "
        "REQUESTED\n"
        f"1f0e3dad9900  linux-64   mixed    12  cached    2026-12-04 23:48 UTC  ada  yes      {asked}\n"
        f"1f0e3dad9900  osx-arm64  mixed     1  none      2026-12-05 01:02 UTC  ada  no       {asked}\n"
    )
    assert list_text([], "s3://bucket/envd") == "no environments in the store `s3://bucket/envd`\n"
    doc = list_json(rows[:1], "file:///s")
    assert doc["store"] == "file:///s"
    assert doc["environments"][0]["requested"] == [
        "python 3.11.*", "numpy >=1.20", "libcxx [osx]", "pypi:rich",
    ]  # fmt: skip


def test_an_imported_lock_says_so() -> None:
    summary = {"sha256": "sha256:" + "0" * 64, "kinds": ["conda", "pypi"]}
    spec = {**SPEC, "python": None, "conda": [], "pypi": [],
            "locked": {"linux-64": summary, "osx-arm64": summary}}  # fmt: skip
    packages = [{"kind": k, "name": f"p{i}", "formats": []}
                for i, k in enumerate(["conda", "conda", "pypi"])]  # fmt: skip
    doc = {**description([]), "spec": spec, "packages": packages, "platform": "osx-arm64"}
    assert lock_line(doc) == (
        "Lock: imported with `resolve --from-lock` (not solved), pinning 2 platform(s): "
        "linux-64, osx-arm64; 3 packages for osx-arm64 (2 conda, 1 PyPI)"
    )
    assert (type_word(doc), requested(spec)) == ("lock:mixed", "lock of 2 platform(s)")
    assert (type_word(description([])), lock_platforms(SPEC)) == ("mixed", [])
