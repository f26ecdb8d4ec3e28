"""The pre-deploy manifest: what it accepts, and errors that name the file, step and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from envd.client.manifest import Manifest, SpecSource, Step, parse_manifest, read_manifest
from envd.errors import InvalidManifestError


def manifest(*steps: Any, **top: Any) -> dict[str, Any]:
    return {"version": 1, "steps": list(steps), **top}


def step(name: str = "train", **environment: Any) -> dict[str, Any]:
    return {
        "name": name,
        "platforms": ["linux-64"],
        "environment": environment or {"packages": ["numpy"]},
    }


def refused(data: Any, base: Path) -> str:
    with pytest.raises(InvalidManifestError) as caught:
        parse_manifest(data, base=base, source="m.yaml")
    assert caught.value.hint  # every refusal says how to fix it
    return caught.value.message


def test_a_manifest_of_files_inline_specs_and_an_alias(tmp_path: Path) -> None:
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "train.yml").write_text("dependencies: [numpy]\n")
    (tmp_path / "reqs.txt").write_text("requests\n")
    text = """\
version: 1
name: nightly
steps:
  - name: train
    platforms: [linux-64, osx-arm64, linux-64]
    environment:
      files: [envs/train.yml]
      requirements: [reqs.txt]
      channels: [conda-forge]
      python: "3.10"
      exclude_newer: 2024-06-01
      virtual_packages: ["__glibc=2.28"]
  - name: serve
    platforms: [linux-aarch64]
    environment:
      alias: ml_team/serve
"""
    (tmp_path / "deploy.yaml").write_text(text)
    parsed = read_manifest(tmp_path / "deploy.yaml")
    assert parsed == Manifest(
        str(tmp_path / "deploy.yaml"),
        "nightly",
        (
            Step(
                "train",
                ("linux-64", "osx-arm64"),
                spec=SpecSource(
                    files=(tmp_path / "envs" / "train.yml",),
                    requirements=(tmp_path / "reqs.txt",),
                    python="3.10",
                    channels=("conda-forge",),
                    virtual_packages=("__glibc=2.28",),
                    exclude_newer="2024-06-01",
                ),
            ),
            Step("serve", ("linux-aarch64",), alias="ml_team/serve:latest"),
        ),
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "failed to read manifest `m.yaml`: the manifest is a list, not a mapping"),
        (
            {"steps": []},
            "failed to read manifest `m.yaml`: `version` is missing; this envd reads version `1`",
        ),
        (
            {"version": 2, "steps": []},
            "failed to read manifest `m.yaml`: `version` is `2`; this envd reads version `1`",
        ),
        (manifest(), "failed to read manifest `m.yaml`: `steps` must be a non-empty list of steps"),
        (manifest(stages=[]), "failed to read manifest `m.yaml`: unknown field `stages`"),
        (
            manifest("train"),
            "failed to read manifest `m.yaml`: steps[0]: a step is a mapping, not a string",
        ),
        (
            manifest({"platforms": ["linux-64"]}),
            "failed to read manifest `m.yaml`: steps[0]: "
            "`name` is missing: a step's name is 1-128 letters, digits, `_`, `.` or `-`",
        ),
        (
            manifest(step(), step()),
            "failed to read manifest `m.yaml`: step `train` (steps[1]): "
            "`name` repeats step 1's name",
        ),
        (
            manifest({**step(), "platform": "linux-64"}),
            "failed to read manifest `m.yaml`: step `train` (steps[0]): unknown field `platform`",
        ),
        (
            manifest({**step(), "platforms": "linux-64"}),
            "failed to read manifest `m.yaml`: step "
            "`train` (steps[0]): `platforms` must be a non-empty list, e.g. `[linux-64, osx-arm64]`",
        ),
        (
            manifest({**step(), "platforms": ["linux-65"]}),
            "failed to read manifest `m.yaml`: "
            "step `train` (steps[0]): `platforms[0]`: unknown platform `linux-65`",
        ),
        (
            manifest({"name": "x", "platforms": ["linux-64"]}),
            "failed to read manifest `m.yaml`: "
            "step `x` (steps[0]): `environment` must be a mapping with a spec or an `alias`",
        ),
        (
            manifest(step(channels=["conda-forge"])),
            "failed to read manifest `m.yaml`: step "
            "`train` (steps[0]): `environment` asks for nothing: give `files`, `requirements`, "
            "`packages` or `pypi`, or an `alias`",
        ),
        (
            manifest(step(packages="numpy")),
            "failed to read manifest `m.yaml`: step `train` "
            "(steps[0]): `environment.packages` must be a list of strings",
        ),
        (
            manifest(step(packages=["numpy"], pip=["x"])),
            "failed to read manifest `m.yaml`: step "
            "`train` (steps[0]): unknown field `environment.pip`",
        ),
        (
            manifest(step(packages=["python"], python=3.1)),
            "failed to read manifest `m.yaml`: step "
            "`train` (steps[0]): `environment.python` is the number `3.1`: quote it, e.g. "
            '`python: "3.10"`',
        ),
        (
            manifest(step(files=["missing.yml"])),
            "failed to read manifest `m.yaml`: step `train` "
            "(steps[0]): `environment.files[0]`: no file `missing.yml` (looked for `BASE/missing.yml`)",
        ),
        (
            manifest(step(alias="team/env:v1", packages=["numpy"])),
            "failed to read manifest "
            "`m.yaml`: step `train` (steps[0]): `environment.alias` names an environment already "
            "resolved; it takes no `packages`",
        ),
        (
            manifest(step(alias="Team/env")),
            "failed to read manifest `m.yaml`: step `train` "
            "(steps[0]): `environment.alias`: `Team/env` is not an alias: failed to build an alias "
            "key: namespace `Team` is invalid",
        ),
    ],
)
def test_refusals_name_the_step_and_field(data: Any, message: str, tmp_path: Path) -> None:
    assert refused(data, tmp_path) == message.replace("BASE", str(tmp_path))


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text("version: 1\nsteps:\n  - name: [train\n")
    with pytest.raises(
        InvalidManifestError, match=rf"^failed to read manifest `{path}:4`: invalid YAML"
    ):
        read_manifest(path)


def test_a_missing_manifest_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(
        InvalidManifestError,
        match=rf"^failed to read manifest `{path}`: No such file or directory$",
    ):
        read_manifest(path)
