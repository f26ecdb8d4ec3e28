"""Which PyPI names a conda package provides: user file, then grayskull, then its own name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envd.agents.main import parse_args
from envd.agents.pypi_names import PypiNames, grayskull_table, read_name_map
from envd.errors import ConfigError

PY = ("python >=3.9,<3.10.0a0",)


def test_grayskull_maps_conda_names_that_differ_from_pypi() -> None:
    names = PypiNames()
    assert names.provided("pytorch", PY) == ("torch",)
    assert names.provided("msgpack-python", PY) == ("msgpack",)
    assert names.provided("typing_extensions", PY) == ("typing-extensions",)
    assert names.provided("opencv", PY) == ("opencv-python", "opencv-python-headless")
    assert len(grayskull_table()) > 12_000


def test_same_name_fallback_only_for_packages_that_depend_on_python() -> None:
    names = PypiNames()
    assert names.provided("PyYAML", ("python_abi 3.9.* *_cp39", *PY)) == ("pyyaml",)
    assert names.provided("envd_private_thing", ("python>=3.9",)) == ("envd-private-thing",)
    # a C library is not the PyPI project of its name (zstd the library vs zstd the binding)
    assert names.provided("zstd", ("libzlib >=1.2.13",)) == ()
    assert names.provided("python_abi", ()) == ()
    assert names.provided("python", ("libzlib",)) == ()


def test_the_user_file_overrides_both(tmp_path: Path) -> None:
    path = tmp_path / "names.json"
    path.write_text(json.dumps({"pytorch": "Torch_Nightly", "six": None, "zstd": "zstd"}))
    names = PypiNames(read_name_map(path))
    assert names.provided("pytorch", PY) == ("torch-nightly",)  # over grayskull
    assert names.provided("six", PY) == ()  # over the same-name fallback
    assert names.provided("zstd", ()) == ("zstd",)  # where the fallback says none
    assert names.provided("numpy", PY) == ("numpy",)  # the rest as before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "it is a JSON list, not an object of conda name → PyPI name"),
        ("{nope", "not JSON: Expecting property name enclosed in double quotes"),
        ('{"torch": 3}', "entry `torch`: `3` is not a package name"),
        ('{"torch": "a b"}', 'entry `torch`: `"a b"` is not a package name'),
    ],
)
def test_a_bad_user_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "names.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as bad:
        read_name_map(path)
    assert bad.value.message.startswith(f"failed to read `--pypi-name-map` `{path}`: {message}")
    with pytest.raises(ConfigError, match="No such file"):
        read_name_map(tmp_path / "missing.json")


def test_the_agent_flag() -> None:
    assert parse_args(["--coordinator", "x:1"]).pypi_name_map is None
    args = parse_args(["--coordinator", "x:1", "--pypi-name-map", "/etc/envd/names.json"])
    assert args.pypi_name_map == Path("/etc/envd/names.json")
