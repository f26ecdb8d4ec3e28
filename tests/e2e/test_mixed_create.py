"""A mixed environment as a user makes one: conda python + pip, a PyPI app on top, then `create`.

The conda channel is conda's own test recipes (tests/fixtures/packages/README.md): a real
`python 3.99.99` and `pip 99.99.99` that install through py-rattler like any conda package but
carry no files — no conda channel with a real interpreter is reachable from here (the bundled
conda-forge subset has repodata only). So the PyPI step of `create` gets its interpreter from
the test: the prefix already holds a virtualenv of the host python (`create --force`), whose
`bin/python` uv installs the wheels for. What is real: the resolve (py-rattler, the stub index,
uv), the store, the conda install, uv's offline install from the store's wheels and the checks.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rattler.index import index_fs
from test_cli import one_json, run_client

from harness import ROOT
from pypi_index import Wheel, serve_index

pytestmark = pytest.mark.e2e
RECIPES = ROOT / "tests" / "fixtures" / "packages" / "conda-test-recipes"
CONDA = ["python-3.99.99-0.conda", "pip-99.99.99-py399_0.conda"]
# the app needs pip, which conda provides (99.99.99); the index has a newer pip that uv would
# otherwise take
WHEELS = [Wheel("envd-mixed-app", "1.0", requires=("pip>=99",)), Wheel("pip", "100.0")]


def conda_channel(folder: Path) -> Path:
    (folder / "noarch").mkdir(parents=True)
    for name in CONDA:
        shutil.copy(RECIPES / name, folder / "noarch" / name)
    asyncio.run(index_fs(folder, write_zst=False, write_shards=False, force=True))
    return folder


def test_resolve_a_mixed_spec_then_create_it(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    channel = conda_channel(tmp_path / "channel")
    with serve_index(tmp_path / "index", WHEELS) as index:
        requirements = tmp_path / "requirements.txt"
        requirements.write_text(f"-i {index.url}\nenvd-mixed-app\n")
        resolved = run_client("resolve", "-c", str(channel), "-p", "python=3.99", "-p", "pip",
                              "-r", str(requirements), "--arch", "linux-64", "--json",
                              cwd=tmp_path, env=env)  # fmt: skip
        assert resolved.returncode == 0, resolved.stderr
        assert not any(path.startswith("/simple/pip") for path in index.requests)
    req_id = one_json(resolved)["req_id"]
    (row,) = json.loads(run_client("show", req_id, "--json", cwd=tmp_path, env=env).stdout)
    shown = row["description"]
    assert shown["env_type"] == "mixed"
    assert [(p["kind"], p["name"], p["version"]) for p in shown["packages"]] == [
        ("conda", "pip", "99.99.99"),
        ("conda", "python", "3.99.99"),
        ("pypi", "envd-mixed-app", "1.0"),
    ]
    text = run_client("show", req_id, cwd=tmp_path, env=env).stdout
    assert f"Channels: {channel.as_uri()}\nPyPI indexes: {index.url}\n" in text
    assert "Requested: python 3.99.*, pip, pypi:envd-mixed-app\n" in text

    # no interpreter in the conda part: the PyPI step fails and the prefix is removed
    bare = tmp_path / "bare"
    failed = run_client("create", req_id, "--arch", "linux-64", "--prefix", str(bare),
                        cwd=tmp_path, env=env)  # fmt: skip
    assert failed.returncode == 6, failed.stderr
    assert (
        f"error: failed to create environment in `{bare}`: its PyPI packages need the "
        f"environment's python, and `{bare}/bin/python` does not exist\n" in failed.stderr
    )
    assert not bare.exists()

    prefix = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    created = run_client("create", req_id, "--arch", "linux-64", "--prefix", str(prefix),
                         "--force", "--json", cwd=tmp_path, env=env)  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert one_json(created)["packages"] == [*CONDA[::-1], "envd_mixed_app-1.0-py3-none-any.whl"]
    assert sorted(p.name for p in (prefix / "conda-meta").glob("*.json")) == [
        "pip-99.99.99-py399_0.json", "python-3.99.99-0.json",
    ]  # fmt: skip
    out = subprocess.run([str(prefix / "bin" / "python"), "-c",
                          "import envd_mixed_app; print(envd_mixed_app.VERSION)"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert out.stdout == "1.0\n", out.stderr
    site = next((prefix / "lib").glob("python3.*/site-packages"))
    assert sorted(p.name for p in site.glob("*.dist-info")) == ["envd_mixed_app-1.0.dist-info"]
