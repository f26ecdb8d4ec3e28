"""PyPI index passwords never shown: `spec` refuses them (text and `--json`) naming the URL
masked, errors naming an index, and `show`/`list` of a stored environment whose spec names one
(stored before they were refused) — always `https://user:***@host`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_cli import run_client

from envd.catalog import Catalog
from envd.description import ResolvedBy, ResolvedPackage, SolverInfo, build_description
from envd.ids import req_id
from envd.spec import CondaDependency, PypiDependency, Spec
from envd.store.local import LocalStore

pytestmark = pytest.mark.e2e
SECRET = "s3cr3t-pw"
INDEX = f"https://alice:{SECRET}@pypi.corp.example/simple"
SHOWN = "https://alice:***@pypi.corp.example/simple"
WHEEL = f"https://alice:{SECRET}@files.corp.example/tool-1.0-py3-none-any.whl"


def test_spec_refuses_index_passwords_masked_as_text_json_and_in_errors(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"-i {INDEX}\nrequests\n")
    as_json = run_client("spec", "-r", str(requirements), "--json", cwd=tmp_path)
    as_text = run_client("spec", "-r", str(requirements), "--arch", "linux-64", cwd=tmp_path)
    for out in (as_json, as_text):  # a spec is hashed, stored and shown: no secret goes in
        assert out.returncode == 2, out.stderr
        assert SECRET not in out.stdout + out.stderr
        assert f"PyPI index URL `{SHOWN}` carries credentials" in out.stderr
    wheel = tmp_path / "wheel.txt"
    wheel.write_text(f"tool @ {WHEEL}\n")
    refused = run_client("spec", "-r", str(wheel), cwd=tmp_path)
    assert refused.returncode == 2 and SECRET not in refused.stdout + refused.stderr
    assert "`https://alice:***@files.corp.example/tool-1.0-py3-none-any.whl`" in refused.stderr
    twice = tmp_path / "twice.txt"
    twice.write_text(f"-i {INDEX}\n-i https://bob:{SECRET}@other.example/simple\nrequests\n")
    refused = run_client("spec", "-r", str(twice), cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == (
        f"error: failed to set index URL `https://bob:***@other.example/simple` at {twice}:2: "
        f"`{SHOWN}` was already set at {twice}:1\n"
        "hint: give `--index-url` once; add others with `--extra-index-url`\n"
    )


def test_show_and_list_mask_a_stored_specs_index_password(tmp_path: Path) -> None:
    spec = Spec(
        conda=(CondaDependency("python", "python"),),
        pypi=(PypiDependency("tool", f"tool @ {WHEEL}"),),
        channels=("conda-forge",), pypi_indexes=(INDEX,),
    )  # fmt: skip
    package = ResolvedPackage(
        kind="conda", name="python", version="3.12.0", build="h0_0", channel="conda-forge",
        url="https://conda.anaconda.org/conda-forge/linux-64/python-3.12.0-h0_0.conda",
        filename="python-3.12.0-h0_0.conda", sha256="a" * 64, md5=None, size=1, subdir="linux-64",
    )  # fmt: skip
    doc = build_description(
        req_id=req_id(spec), platform="linux-64", spec=spec, packages=[package],
        resolved_at=datetime(2024, 5, 1, tzinfo=UTC), solver=SolverInfo("rattler", "0.28.0"),
        resolved_by=ResolvedBy(user="ada", agent="agent-1", host="build-01"),
    )  # fmt: skip
    catalog = Catalog(LocalStore(tmp_path / "home" / "store"))
    catalog.write_description(doc)
    catalog.set_default(doc["req_id"], "linux-64", doc["full_id"], doc["resolved_at"])
    outputs = [run_client(*command, cwd=tmp_path) for command in (
        ("show", doc["req_id"]), ("show", doc["req_id"], "--json"), ("list",), ("list", "--json"),
    )]  # fmt: skip
    for out in outputs:
        assert out.returncode == 0, out.stderr
        assert SECRET not in out.stdout + out.stderr, out.stdout
    (shown,) = json.loads(outputs[1].stdout)
    assert shown["description"]["spec"]["pypi_indexes"] == [SHOWN]
    assert "pypi:tool @ https://alice:***@files.corp.example/" in outputs[0].stdout
