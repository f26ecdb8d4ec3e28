"""Independent check of a solution: every record's depends and constrains hold in it."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import rattler
from rattler import MatchSpec

from envd.platforms import default_virtual_packages


@cache
def _records(channel_dir: str, subdir: str) -> dict[str, rattler.RepoDataRecord]:
    path = Path(channel_dir) / subdir / "repodata.json"
    records = rattler.RepoData.from_path(str(path)).into_repo_data(rattler.Channel("file:///x"))
    return {r.file_name: r for r in records}


def check_solution(description: dict[str, Any], channel_dir: Path, requested: list[str]) -> None:
    """Raise AssertionError naming the first unmet dependency or violated constraint."""
    platform = description["platform"]
    chosen: dict[str, rattler.RepoDataRecord] = {}
    for package in description["packages"]:
        table = _records(str(channel_dir), package["subdir"])
        assert package["filename"] in table, f"{package['filename']} is not in the repodata"
        record = table[package["filename"]]
        assert record.sha256 is not None and record.sha256.hex() == package["sha256"]
        assert package["name"] not in chosen, f"two records named {package['name']}"
        chosen[package["name"]] = record
    virtual = default_virtual_packages(platform)
    for name, record in chosen.items():
        for dep in record.depends:
            spec = MatchSpec(dep)
            dep_name = spec.name.normalized if spec.name else ""
            if dep_name.startswith("__"):
                assert dep_name in virtual, (
                    f"{name} needs {dep}, not a virtual package of {platform}"
                )
                continue
            assert dep_name in chosen, f"{name} needs {dep}: not in the solution"
            assert spec.matches(chosen[dep_name]), f"{name} needs {dep}: got {chosen[dep_name]}"
        for constraint in record.constrains:
            spec = MatchSpec(constraint)
            other = chosen.get(spec.name.normalized if spec.name else "")
            assert other is None or spec.matches(other), f"{name} constrains {constraint}"
    for text in requested:
        spec = MatchSpec(text)
        assert spec.name is not None
        met = chosen.get(spec.name.normalized)
        assert met is not None and spec.matches(met), f"request {text} not met"
