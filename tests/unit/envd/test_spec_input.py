"""The request as the client assembles it: refused at once when it cannot be resolved."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.errors import InvalidSpecError
from envd.spec_input import load_spec, require_channels


@pytest.mark.parametrize(
    ("kwargs", "needs_channel"),
    [
        ({"packages": ["numpy"]}, True),
        ({"python": "3.11"}, True),
        ({"pypi": ["rich"]}, False),
        ({"pypi": ["rich"], "python": "3.11"}, False),
        ({"packages": ["numpy"], "channels": ["conda-forge"]}, False),
        ({"packages": ["numpy"], "channels": ["nodefaults"]}, True),
    ],
)
def test_conda_dependencies_need_a_channel(
    kwargs: dict[str, list[str]], needs_channel: bool
) -> None:
    spec = load_spec(**kwargs).spec  # type: ignore[arg-type]
    if not needs_channel:
        require_channels(spec)
        return
    with pytest.raises(InvalidSpecError) as info:
        require_channels(spec)
    assert info.value.message == (
        "the spec has conda dependencies but names no channel to resolve them from"
    )


@pytest.mark.parametrize(
    ("package", "python"),
    [("python=3.9", "3.11"), ("python>=3.12", "3.11"), ("python <3.10", ">=3.10"),
     ("python 3.9.*", "3.10.1")],
)  # fmt: skip
def test_conflicting_python_versions_are_refused_naming_both(package: str, python: str) -> None:
    with pytest.raises(InvalidSpecError) as info:
        load_spec(packages=[package], python=python)
    assert info.value.message == (
        f"conflicting python versions: `--python {python}` and `{package}` at --package"
    )
    assert info.value.hint == "give the python version once: `--python` or a `python` dependency"


@pytest.mark.parametrize(
    ("package", "python", "merged"),
    [("python>=3.9", "3.11", "3.11.*,>=3.9"), ("python=3.11", "3.11", "3.11.*"),
     ("python >3.9,<3.9.5", ">=3.9", ">3.9,<3.9.5,>=3.9"), ("python", "3.11", "3.11.*")],
)  # fmt: skip
def test_compatible_python_constraints_merge(package: str, python: str, merged: str) -> None:
    spec = load_spec(packages=[package], python=python).spec
    assert sorted(spec.python.split(",")) == sorted(merged.split(","))  # type: ignore[union-attr]


def test_conflict_with_a_file_names_the_file_line(tmp_path: Path) -> None:
    env = tmp_path / "environment.yml"
    env.write_text("channels: [conda-forge]\ndependencies:\n  - python=3.8\n")
    with pytest.raises(
        InvalidSpecError,
        match=rf"conflicting python versions: `--python 3.12` and `python=3.8` at {env}:3",
    ):
        load_spec(env_files=[env], python="3.12")
