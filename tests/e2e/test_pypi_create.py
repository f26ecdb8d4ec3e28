"""A pypi-only environment as a user makes one: resolve a requirements.txt, then `create`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_cli import one_json, run_client

from pypi_index import LINUX_TAG, serve_index

pytestmark = pytest.mark.e2e


def test_resolve_then_create_a_virtualenv_from_the_store(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    with serve_index(tmp_path / "index") as index:
        requirements = tmp_path / "requirements.txt"
        requirements.write_text(f"-i {index.url}\nenvd-app\n")
        resolve = ["resolve", "-r", str(requirements), "--python", "3.11", "--json"]
        resolved = run_client(*resolve, "--arch", "linux-64", "--arch", "osx-arm64",
                              cwd=tmp_path, env=env)  # fmt: skip
        assert resolved.returncode == 0, resolved.stderr
        older = run_client(*resolve, "--exclude-newer", "2025-01-01", "--arch", "linux-64",
                           cwd=tmp_path, env=env)  # fmt: skip
        assert older.returncode == 0, older.stderr
    # the index is gone: the store alone is enough now
    document = one_json(resolved)
    req_id = document["req_id"]
    assert {e["platform"]: e["outcome"] for e in document["environments"]} == {
        "linux-64": "resolved", "osx-arm64": "resolved",
    }  # fmt: skip
    prefix = tmp_path / "venv"
    created = run_client("create", req_id, "--arch", "linux-64", "--prefix", str(prefix),
                         "--json", cwd=tmp_path, env=env)  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert one_json(created)["packages"] == [
        "envd_app-2.0-py3-none-any.whl",
        "envd_linux_only-1.0-py3-none-any.whl",
        f"envd_native-1.0-{LINUX_TAG}.whl",
    ]
    code = "import envd_app, envd_linux_only, envd_native; print(envd_app.VERSION, envd_native.TAG)"
    out = subprocess.run([str(prefix / "bin" / "python"), "-c", code], capture_output=True,
                         text=True, check=False)  # fmt: skip
    assert out.stdout == f"2.0 {LINUX_TAG}\n", out.stderr
    old_prefix = tmp_path / "old"
    old_id = one_json(older)["req_id"]
    created = run_client("create", old_id, "--arch", "linux-64", "--prefix", str(old_prefix),
                         "--json", cwd=tmp_path, env=env)  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert one_json(created)["packages"] == ["envd_app-1.0-py3-none-any.whl"]
    mac = run_client("create", req_id, "--arch", "osx-arm64", "--prefix", str(tmp_path / "mac"),
                     cwd=tmp_path, env=env)  # fmt: skip
    assert mac.returncode == 2
    assert "it is for `osx-arm64` and this machine is `linux-64`" in mac.stderr
    assert not (tmp_path / "mac").exists()
