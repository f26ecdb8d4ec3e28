"""`diff`: packages added, removed and changed per platform, as JSON fields and as text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lock_envs import conda, description, environment, spec

from envd.client.diff import diff_environments, diff_text
from envd.description import ResolvedBy, SolverInfo, build_description, packages_of


def _with(old: dict[str, Any], drop: str, add: Any) -> dict[str, Any]:
    kept = [p for p in packages_of(old) if p.name != drop] + [add]
    return build_description(
        req_id=old["req_id"], platform=old["platform"], spec=spec(), packages=kept,
        resolved_at=datetime(2024, 7, 1, tzinfo=UTC),
        resolved_by=ResolvedBy("t", "a", "h"), solver=SolverInfo("s", "0"),
    )  # fmt: skip


def test_changed_added_removed_per_platform() -> None:
    old = environment(python="3.11.8")
    new_linux = _with(
        description("linux-64"), "libzlib", conda("zstd", "1.5.6", "h0_0", "linux-64")
    )
    new = {"linux-64": new_linux, "win-64": description("linux-64") | {"full_id": "w" * 40}}
    document = diff_environments(old, new)
    linux = document["platforms"]["linux-64"]
    assert linux["changed"] == [{
        "name": "python", "kind": "conda", "old_version": "3.11.8",
        "old_build": "h1234567_0_cpython", "new_version": "3.11.9",
        "new_build": "h1234567_0_cpython",
    }]  # fmt: skip
    assert [r["name"] for r in linux["added"]] == ["zstd"]
    assert linux["added"][0]["old_version"] is None
    assert [(r["name"], r["new_version"]) for r in linux["removed"]] == [("libzlib", None)]
    assert list(document["platforms"]) == ["linux-64", "osx-arm64", "win-64"]
    osx = document["platforms"]["osx-arm64"]
    assert (osx["new_full_id"], len(osx["removed"]), osx["added"]) == (None, 5, [])
    assert document["platforms"]["win-64"]["old_full_id"] is None


def test_same_environment_has_no_differences_and_text_says_so() -> None:
    env = environment()
    document = diff_environments(env, env)
    assert all(not e["added"] and not e["removed"] and not e["changed"]
               for e in document["platforms"].values())  # fmt: skip
    full = env["linux-64"]["full_id"][:12]
    assert diff_text({"platforms": {"linux-64": document["platforms"]["linux-64"]}}, "a", "b") == (
        f"--- a\n+++ b\nlinux-64: {full} → {full}\n  (no package differs)\n"
        "  0 added, 0 removed, 0 changed\n"
    )


def test_text_table() -> None:
    old = {"linux-64": description("linux-64", python="3.11.8")}
    new = {
        "linux-64": _with(
            description("linux-64"), "tzdata", conda("zstd", "1.5.6", "h0_0", "linux-64")
        )
    }
    text = diff_text(diff_environments(old, new), "A", "B")
    assert text.splitlines()[3:] == [
        "  ~ python  conda  3.11.8 h1234567_0_cpython → 3.11.9 h1234567_0_cpython",
        "  - tzdata  conda  2024a h0c530f3_0",
        "  + zstd    conda  1.5.6 h0_0",
        "  1 added, 1 removed, 1 changed",
    ]
