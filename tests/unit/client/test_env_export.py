"""Pinned environment.yml and requirements.txt: read back by YAML and by `packaging`, errors
for a conda-only environment and for platforms that pin differently."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from lock_envs import INDEX, environment, wheel
from packaging.requirements import Requirement

from envd.client.env_export import render_export
from envd.description import ResolvedBy, SolverInfo, build_description
from envd.errors import LockExportError
from envd.ids import req_id
from envd.spec import PypiDependency, Spec


def test_environment_yml_pins_conda_and_pip_packages_of_one_platform() -> None:
    descriptions = environment()
    document = yaml.safe_load(render_export(descriptions, "environment.yml", "osx-arm64"))
    assert document == {
        "channels": ["https://conda.example.invalid/forge", "nodefaults"],
        "dependencies": [
            "libzlib=1.2.13=h4ab18f5_6",
            "python=3.11.9=h7654321_1_cpython",
            "tzdata=2024a=h0c530f3_0",
            {"pip": [f"--index-url {INDEX}", "envd-app==2.0", "envd-native==1.0"]},
        ],
    }


def test_requirements_txt_pins_pypi_packages_with_hashes() -> None:
    description = environment()["linux-64"]
    text = render_export({"linux-64": description}, "requirements.txt", None).decode()
    lines = text.replace("\\\n", "").splitlines()
    assert lines[1] == ("# not installable by pip, so not listed: 3 conda packages "
                        "(libzlib, python, tzdata)")  # fmt: skip
    assert lines[2] == f"--index-url {INDEX}"
    pins = {}
    for line in lines[3:]:
        requirement, _, hash_option = line.partition("--hash=")
        parsed = Requirement(requirement.strip())
        pins[parsed.name] = (str(parsed.specifier), hash_option)
    assert pins == {
        p["name"]: (f"=={p['version']}", f"sha256:{p['sha256']}")
        for p in description["packages"]
        if p["kind"] == "pypi"
    }


def test_a_conda_only_environment_has_no_requirements_txt() -> None:
    with pytest.raises(LockExportError, match=r"requirements.txt for `linux-64`: the environment "
                       r"has no PyPI packages \(its 3 packages are conda packages\)"):  # fmt: skip
        render_export(environment(pypi=False), "requirements.txt", "linux-64")


def test_several_platforms_need_platform_unless_they_pin_the_same() -> None:
    descriptions = environment()
    with pytest.raises(LockExportError, match=r"2 platforms pin different packages "
                       r"\(`linux-64`, `osx-arm64`\)") as caught:  # fmt: skip
        render_export(descriptions, "environment.yml", None)
    assert caught.value.hint == "choose one with `--platform PLATFORM`"
    with pytest.raises(LockExportError, match="no platform `win-64`"):
        render_export(descriptions, "environment.yml", "win-64")
    one = {"linux-64": descriptions["linux-64"]}
    assert render_export(one, "environment.yml", None) == render_export(
        descriptions, "environment.yml", "linux-64"
    )


def test_platforms_that_pin_the_same_packages_export_without_platform() -> None:
    """A pypi-only environment of pure wheels pins the same on every platform: one file, its
    header naming them all (the header alone never makes them differ)."""
    the_spec = Spec(pypi=(PypiDependency("envd-app", "envd-app"),), python="3.11",
                    pypi_indexes=(INDEX,))  # fmt: skip
    descriptions = {p: _pure(the_spec, p) for p in ("linux-64", "osx-arm64")}
    text = render_export(descriptions, "requirements.txt", None).decode()
    full_id = descriptions["linux-64"]["full_id"]
    assert text.splitlines()[0] == (
        f"# exported by envd from {req_id(the_spec)}:{full_id} for linux-64, osx-arm64"
    )
    assert "envd-app==2.0 \\\n" in text
    with pytest.raises(LockExportError) as caught:
        render_export(descriptions, "environment.yml", "linux-64")
    assert caught.value.message == (
        "failed to export environment.yml for `linux-64`: the environment is pypi-only, and "
        "conda installs a `pip:` list only into a python from a channel"
    )
    assert caught.value.hint is not None and "python 3.11" in caught.value.hint


def _pure(the_spec: Spec, platform: str) -> dict[str, Any]:
    return build_description(
        req_id=req_id(the_spec), platform=platform, spec=the_spec,
        packages=[wheel("envd-app", "2.0")], resolved_at=datetime(2024, 6, 1, tzinfo=UTC),
        resolved_by=ResolvedBy("t", "a", "h"), solver=SolverInfo("uv", "0"),
    )  # fmt: skip


def test_find_links_pages_are_exported_so_pip_can_find_their_files() -> None:
    from envd.requirements_txt import PipLineReader

    description = environment()["linux-64"]
    links = "https://links.example/wheels/"
    linked = {**description, "spec": {**description["spec"], "pypi_find_links": [links]}}
    text = render_export({"linux-64": linked}, "requirements.txt", None).decode()
    assert text.replace("\\\n", "").splitlines()[2:4] == [f"--index-url {INDEX}",
                                                          f"--find-links {links}"]  # fmt: skip
    document = yaml.safe_load(render_export({"linux-64": linked}, "environment.yml", "linux-64"))
    reader = PipLineReader(category="main", editable="error")
    for number, line in enumerate(document["dependencies"][-1]["pip"], start=1):
        reader.add_line(line, source="export", line=number, base_dir=Path("."), selector=None)
    assert reader.result().find_links == (links,)  # what envd reads back
