"""Aliases, deletion and gc as a user runs them on the embedded default: an alias wherever an
id is taken, a write-once tag refused after the resolution is printed, history, `delete`
refused while aliased, and `gc` removing only old, unreferenced archives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_cli import normalized, run_client
from test_create import demo_env

from harness import EXAMPLE_CHANNEL

pytestmark = pytest.mark.e2e


def test_an_alias_from_resolve_to_create_then_delete_and_gc(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}

    def client(*args: str) -> tuple[int, str, str]:
        out = run_client(*args, cwd=tmp_path, env=env)
        return out.returncode, out.stdout, out.stderr

    code, out, err = client("resolve", "-f", str(demo_env(tmp_path)), "--arch", "linux-64",
                            "--alias", "team/demo:v1", "--json")  # fmt: skip
    assert code == 0, err
    resolved = one_json_text(out)
    req_id, full_id = resolved["req_id"], resolved["environments"][0]["full_id"]
    assert resolved["alias"]["alias"] == "team/demo:v1"
    assert resolved["alias"]["full_ids"] == {"linux-64": full_id}
    code, out, err = client("create", "team/demo:v1", "--prefix", str(tmp_path / "env"), "--json")
    assert code == 0, err
    assert one_json_text(out)["full_id"] == full_id
    assert one_json_text(client("show", "team/demo:v1", "--json")[1])[0]["is_default"] is True
    # another environment under the version tag: the resolution prints, then the refusal
    code, out, err = client("resolve", "-c", str(EXAMPLE_CHANNEL), "-p", "python=3.9", "--arch",
                            "linux-64", "--no-archives", "-q", "--alias", "team/demo:v1")  # fmt: skip
    assert code == 2
    assert normalized(out).startswith("linux-64  resolved  T s  ")
    assert err.startswith(
        "error: failed to point alias `team/demo:v1` at req_id `"
    ) and err.endswith(
        f"its tag `v1` looks like a version, so it is write-once, and it points at req_id "
        f"`{req_id}` (`{full_id}` on `linux-64`)\nhint: use a new version tag, or a moving tag "
        "such as `latest`\n"
    )
    assert client("alias", "set", "team/demo", "team/demo:v1")[0] == 0
    code, out, _ = client("alias", "get", "team/demo", "--json")
    got = one_json_text(out)
    assert list(got) == ["alias", "req_id", "full_ids", "history"]
    assert (got["alias"], got["req_id"], got["full_ids"]) == (
        "team/demo:latest",
        req_id,
        {"linux-64": full_id},
    )
    assert [(m["action"], m["from"], m["to"]["req_id"]) for m in got["history"]] == [
        ("set", None, req_id)
    ]
    assert client("alias", "list", "team/")[1] == (
        f"team/demo:latest  {req_id[:12]}  linux-64 {full_id[:12]}\n"
        f"team/demo:v1      {req_id[:12]}  linux-64 {full_id[:12]}\n"
    )
    code, _, err = client("delete", "team/demo")
    assert code == 2 and "alias(es) `team/demo:latest`, `team/demo:v1` point at it" in err
    assert client("gc")[1].endswith("removed 0 object(s), 0 bytes; kept 0 unreferenced "
                                     "younger than 86400 s\n")  # fmt: skip
    code, out, err = client("delete", "team/demo", "--force", "--json")
    assert code == 0, err
    assert one_json_text(out)["deleted"] == [{
        "req_id": req_id, "platform": "linux-64", "full_id": full_id, "default_removed": True,
        "aliases_updated": ["team/demo:latest", "team/demo:v1"],
    }]  # fmt: skip
    code, _, err = client("alias", "get", "team/demo:v1")
    assert code == 2 and "no alias `team/demo:v1`: its last environment was deleted on" in err
    store = tmp_path / "home" / "store"

    def stored(folder: str) -> list[str]:  # lock files beside keys stay (local.py says why)
        return sorted(p.name for p in (store / folder).rglob("[!.]*") if p.is_file())

    archives = stored("pkgs")
    assert one_json_text(client("gc", "--json")[1])["removed"] == []  # younger than a day
    dry = one_json_text(client("gc", "--grace", "0", "--dry-run", "--json")[1])
    doomed = sorted(k.rsplit("/", 1)[-1] for k in dry["removed"] if k.startswith("pkgs/"))
    assert doomed == archives and len(archives) == 3  # two packages, one transmuted
    assert stored("pkgs") == archives
    assert one_json_text(client("gc", "--grace", "0", "--json")[1])["removed"] == dry["removed"]
    assert stored("pkgs") == stored("links") == []


def one_json_text(text: str) -> Any:
    return json.loads(text)  # fails unless stdout is exactly one document
