"""The distribution's shape: wheel contents, generated stubs, role boundaries, entry points."""

from __future__ import annotations

import ast
import filecmp
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ROLES = {
    "daemon": "envd.daemon",
    "agents": "envd.agents",
    "client": "envd.client",
    "embedded": "envd.embedded",
}
SOURCE_DIRS = {"envd": ROOT / "envd", **{module: ROOT / folder for folder, module in ROLES.items()}}


def _source_packages() -> set[str]:
    found = set()
    for module, folder in SOURCE_DIRS.items():
        for init in folder.rglob("__init__.py"):
            relative = init.parent.relative_to(folder)
            found.add(".".join([module, *relative.parts]) if relative.parts else module)
    return found


@pytest.mark.timeout(300)
def test_wheel_contains_every_package_and_data(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("envd-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in _source_packages():
        assert f"{package.replace('.', '/')}/__init__.py" in names, package
    for data in (
        "envd/data/description-v1.schema.json",
        "envd/data/virtual_packages.json",
        "envd/data/channels.json",
    ):
        assert data in names
    entry_points = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith("entry_points.txt")))
        .decode()
    )
    for script in ("envd-daemon", "envd-agent", "envd-client"):
        assert f"{script} = " in entry_points


def test_generated_stubs_match_the_protos(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos"), str(tmp_path)], check=True
    )
    generated = sorted(p.name for p in (tmp_path / "envd" / "v1").glob("*_pb2*"))
    committed = sorted(p.name for p in (ROOT / "envd" / "v1").glob("*_pb2*"))
    assert generated == committed
    _, mismatch, errors = filecmp.cmpfiles(
        tmp_path / "envd" / "v1", ROOT / "envd" / "v1", generated, shallow=False
    )
    assert mismatch == [] and errors == [], "stale stubs: run `make protos`"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


# which roles each folder may import besides the shared domain `envd` (which imports none):
# `embedded` is the composition root wiring a daemon and an agent in one process, and the
# client starts it when no coordinator is configured
ALLOWED = {
    "envd": set(),
    "daemon": set(),
    "agents": set(),
    "client": {"envd.embedded"},
    "embedded": {"envd.daemon", "envd.agents"},
}


def test_roles_import_only_what_the_layout_allows() -> None:
    assert set(ALLOWED) == {"envd", *ROLES}
    for folder, allowed in ALLOWED.items():
        own = ROLES.get(folder, "envd")
        others = [m for m in ROLES.values() if m != own and m not in allowed]
        for path in (ROOT / folder).rglob("*.py"):
            if path.is_relative_to(ROOT / "envd" / "v1"):
                continue
            bad = [
                i for i in _imports(path) if any(i == o or i.startswith(o + ".") for o in others)
            ]
            assert bad == [], f"{path.relative_to(ROOT)} imports a role it may not: {bad}"


@pytest.mark.parametrize("script", ["envd-daemon", "envd-agent", "envd-client"])
def test_console_scripts_run_from_any_directory(script: str, tmp_path: Path) -> None:
    executable = Path(sys.executable).parent / script
    assert executable.exists()
    out = subprocess.run([str(executable), "--version"], cwd=tmp_path, capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout.strip().startswith(f"{script} ")
