"""environment.yml parsing: what is kept, where it came from, and the errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.errors import InvalidSpecError, RequestTooLargeError
from envd.requirements_txt import DEFAULT_INDEX_URL
from envd.spec import RawDependency, RawSpec
from envd.spec_files import EnvironmentFile, parse_environment_text, read_environment_file

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "specs"
SELECTOR_WORDS = ["linux", "osx", "win", "unix", "osx64", "arm64", "linux64", "aarch64", "win64"]


def parse(text: str, base_dir: Path = Path(".")) -> RawSpec:
    return parse_environment_text(text, source="environment.yml", base_dir=base_dir).spec


def error(text: str) -> InvalidSpecError:
    with pytest.raises(InvalidSpecError) as caught:
        parse(text)
    return caught.value


EXAMPLE = """\
# a development environment
name: dev
channels:
  - conda-forge
  - nodefaults
platforms:
  - linux-64
  - osx-arm64
dependencies:
  - python=3.11
  - numpy >=1.20  # [linux]
  - libcxx  # [osx]
  # comment lines and blank lines do not move line numbers

  - pip
  - pip:
    - requests>=2.31
    - psutil  # [win]
pip-repositories:
  - https://pypi.example.org/simple
"""


def test_example() -> None:
    raw = parse(EXAMPLE)
    src = "environment.yml"
    assert raw.channels == ["conda-forge", "nodefaults"]
    assert raw.platforms == ["linux-64", "osx-arm64"]
    assert raw.conda == [
        RawDependency("python=3.11", src, 10),
        RawDependency("numpy >=1.20", src, 11, selector="linux"),
        RawDependency("libcxx", src, 12, selector="osx"),
        RawDependency("pip", src, 15),
        RawDependency("pip", src, 16),
    ]
    assert raw.pypi == [
        RawDependency("requests>=2.31", src, 17),
        RawDependency("psutil", src, 18, selector="win"),
    ]
    assert raw.pypi_indexes == [DEFAULT_INDEX_URL, "https://pypi.example.org/simple"]
    assert raw.python is None


@pytest.mark.parametrize("word", SELECTOR_WORDS)
def test_platform_selectors_are_kept(word: str) -> None:
    raw = parse(f"dependencies:\n  - numpy  # [{word}]\n  - pip:\n    - rich # [{word}]\n")
    assert raw.conda[0].selector == word
    assert raw.pypi[0].selector == word


def test_selector_after_other_comment_text_as_conda_lock_reads_it() -> None:
    raw = parse("dependencies:\n  - numpy  # only here [linux]\n")
    assert raw.conda[0].selector == "linux"


def test_brackets_in_prose_are_a_comment() -> None:
    # matplotlib's environment.yml has this line; conda-lock reads `[parallel]` as a selector
    # and drops joblib on every platform, envd keeps it everywhere.
    raw = parse("dependencies:\n  - joblib  # needed for sphinx-gallery[parallel]\n")
    assert raw.conda == [RawDependency("joblib", "environment.yml", 2)]


def test_category_applies_to_every_dependency_but_the_added_pip() -> None:
    raw = parse("category: dev\ndependencies:\n  - pytest\n  - pip:\n    - rich\n")
    assert [(d.text, d.category) for d in raw.conda] == [("pytest", "dev"), ("pip", "main")]
    assert [(d.text, d.category) for d in raw.pypi] == [("rich", "dev")]


def test_added_pip_follows_the_entries_selectors() -> None:
    raw = parse("dependencies:\n  - pip:\n    - psutil  # [linux]\n    - wmi  # [win]\n")
    assert [(d.text, d.selector) for d in raw.conda] == [("pip", "linux"), ("pip", "win")]
    raw = parse("dependencies:\n  - pip:  # [unix]\n    - psutil\n")
    assert [(d.text, d.selector) for d in raw.conda] == [("pip", "unix")]
    assert raw.pypi[0].selector == "unix"


def test_pip_without_a_list_adds_nothing() -> None:
    assert parse("dependencies:\n  - numpy\n  - pip:\n").conda == [
        RawDependency("numpy", "environment.yml", 2)
    ]
    assert [d.text for d in parse("dependencies:\n  - pip: []\n").conda] == ["pip"]


def test_pip_entries_are_requirement_lines(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("attrs\n")
    raw = parse(
        "dependencies:\n"
        "  - pip:\n"
        "    - flit-core === 3.9.0 --hash=sha256:1234\n"
        "    - git+https://github.com/pydantic/pydantic@v2.0b2\n"
        "    - -r requirements.txt\n"
        "    - --extra-index-url https://x.org/simple\n",
        base_dir=tmp_path,
    )
    assert [(d.text, d.source, d.line) for d in raw.pypi] == [
        ("flit-core === 3.9.0", "environment.yml", 3),
        ("pydantic @ git+https://github.com/pydantic/pydantic@v2.0b2", "environment.yml", 4),
        ("attrs", str(tmp_path / "requirements.txt"), 1),
    ]
    assert raw.pypi_indexes == [DEFAULT_INDEX_URL, "https://x.org/simple"]


def test_editable_pip_entries_are_skipped_with_a_warning() -> None:
    parsed = parse_environment_text(
        "dependencies:\n  - pip:\n    - -e .\n    - rich\n",
        source="environment.yml",
        base_dir=Path("."),
    )
    assert [d.text for d in parsed.spec.pypi] == ["rich"]
    assert parsed.warnings == (
        "skipped editable pip entry `-e .` at environment.yml:3: install it after the "
        "environment is created",
    )


def test_ignored_keys() -> None:
    raw = parse("name: x\nprefix: /opt/x\nvariables:\n  A: b\ndependencies: [numpy]\n")
    assert [d.text for d in raw.conda] == ["numpy"]
    assert parse("allow-pypi-requests: true\ndependencies: []\n").conda == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "channels:\n  - a\n dependencies:\n  - b\n",
            "failed to parse `environment.yml:3`: expected <block end>, but found "
            "'<block mapping start>'",
        ),
        (
            "dependencies: numpy\n",
            "failed to parse `environment.yml:1`: `dependencies` must be a list",
        ),
        (
            "dependencies:\n  - numpy\n  - 3\n",
            "failed to parse `environment.yml:3`: expected a string for a dependency, found `3`",
        ),
        (
            "dependencies:\n  - [a, b]\n",
            "failed to parse `environment.yml:2`: expected a string for a dependency, found a list",
        ),
        (
            "dependencies:\n  -\n",
            "failed to parse `environment.yml:2`: expected a string for a dependency, "
            "found nothing",
        ),
        (
            "dependencies:\n  - npm:\n    - left-pad\n",
            "failed to parse `environment.yml:2`: unknown dependency section `npm`",
        ),
        (
            "dependencies:\n  - pip: rich\n",
            "failed to parse `environment.yml:2`: `pip` must be a list",
        ),
        (
            "- numpy\n",
            "failed to parse `environment.yml:1`: expected a mapping with `channels:` and "
            "`dependencies:`",
        ),
        ("", "failed to parse `environment.yml`: the file is empty"),
        (
            "dependencies: [a]\ndependencies: [b]\n",
            "failed to parse `environment.yml:2`: key `dependencies` is given twice",
        ),
        (
            "category: [a]\ndependencies: []\n",
            "failed to parse `environment.yml:1`: expected a string for `category`, found a list",
        ),
        (
            "dependencies:\n  - numpy {{ numpy_version }}\n",
            "failed to parse `environment.yml:2`: Jinja templates are not supported",
        ),
        (
            "{% set v = '1.0' %}\ndependencies:\n  - numpy\n",
            "failed to parse `environment.yml:1`: Jinja templates are not supported",
        ),
        (
            "dependencies:\n  - numpy  # [py38]\n",
            "failed to parse `environment.yml:2`: unsupported selector `[py38]`",
        ),
        (
            "dependencies:\n  - numpy  # [linux and x86_64]\n",
            "failed to parse `environment.yml:2`: unsupported selector `[linux and x86_64]`",
        ),
        (
            "channels:\n  - conda-forge  # [linux]\ndependencies: [numpy]\n",
            "failed to parse `environment.yml:2`: selectors are only supported on dependencies",
        ),
        (
            "dependencies:\n  - pip:  # [linux]\n    - rich  # [osx]\n",
            "failed to parse `environment.yml:3`: selector `[osx]` inside a `pip:` section "
            "guarded by `[linux]`",
        ),
        (
            "allow-pypi-requests: false\ndependencies: [numpy]\n",
            "failed to parse `environment.yml:1`: `allow-pypi-requests: false` is not "
            "supported yet",
        ),
        (
            "dependencies:\n  - pip:\n    - rich\n    - --pre\n",
            "failed to parse option `--pre` at environment.yml:4: not supported",
        ),
    ],
)
def test_bad_files(text: str, message: str) -> None:
    assert error(text).message == message


def test_read_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text(EXAMPLE, encoding="utf-8")
    parsed = read_environment_file(path)
    assert isinstance(parsed, EnvironmentFile)
    assert parsed.spec.conda[1] == RawDependency("numpy >=1.20", str(path), 11, selector="linux")


def test_file_too_large(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text("dependencies:\n" + "  - numpy\n" * 110_000)
    with pytest.raises(RequestTooLargeError, match=r"is over the limit of 1048576 bytes$"):
        read_environment_file(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_bytes(b"dependencies:\n  - caf\xe9\n")
    with pytest.raises(InvalidSpecError, match=rf"^failed to read `{path}`: not UTF-8 text: "):
        read_environment_file(path)


REAL_FILES = sorted(p for p in FIXTURES.rglob("*") if p.suffix in {".yml", ".yaml"} and p.is_file())


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_real_files_keep_their_line_numbers(path: Path) -> None:
    parsed = read_environment_file(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    for dep in [*parsed.spec.conda, *parsed.spec.pypi]:
        assert dep.line is not None
        line = lines[dep.line - 1]
        # the first word, or the URL of a bare URL that became `name @ url`
        first = dep.text.split(" @ ", 1)[-1].split()[0]
        assert first in line.replace("[execute]", ""), (dep, line)  # its extra is dropped
        if dep.selector is not None and not line.strip().startswith("- pip:"):
            assert f"[{dep.selector}]" in line  # (the added `pip` takes its entries' selectors)


def test_relative_channel_folder_is_relative_to_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    parsed = parse_environment_text(
        "channels:\n  - ../channels/local\n  - conda-forge\ndependencies:\n  - numpy\n",
        source="environment.yml",
        base_dir=folder,
    )
    assert parsed.spec.channels == [str(tmp_path / "channels" / "local"), "conda-forge"]


def test_unknown_keys_are_a_warning_naming_the_closest_known_key() -> None:
    parsed = parse_environment_text(
        "name: x\nchannel: [conda-forge]\nplatform: [linux-64]\nflavour: y\ndependencies: [a]\n",
        source="environment.yml",
        base_dir=Path("."),
    )
    known = "known keys: `allow-pypi-requests`, `category`, `channels`, `dependencies`, `name`, "
    known += "`pip-repositories`, `platforms`, `prefix`, `variables`"
    assert parsed.warnings == (
        f"ignored unknown key `channel` at environment.yml:2 (did you mean `channels`?); {known}",
        f"ignored unknown key `platform` at environment.yml:3 (did you mean `platforms`?); {known}",
        f"ignored unknown key `flavour` at environment.yml:4; {known}",
    )
    assert parsed.spec.channels == [] and parsed.spec.platforms == []
    assert parsed.spec.conda == [RawDependency("a", "environment.yml", 5)]


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("nbconvert[execute]!=6.0.0,!=6.0.1", "nbconvert!=6.0.0,!=6.0.1"),
        ("dask[complete] >=2024.1", "dask>=2024.1"),
        ("conda-forge::black[jupyter]", "conda-forge::black"),
        ("ray[default, tune]==2.9", "ray==2.9"),
    ],
)
def test_conda_extras_are_dropped_with_a_warning(written: str, read: str) -> None:
    parsed = parse_environment_text(
        f"dependencies:\n  - {written}\n", source="environment.yml", base_dir=Path(".")
    )
    extras = written[written.index("[") + 1 : written.index("]")]
    assert parsed.spec.conda == [RawDependency(read, "environment.yml", 2)]
    assert parsed.warnings == (
        f"conda dependency `{written}` at environment.yml:2: extras `[{extras}]` are not part of "
        f"conda's match spec; reading it as `{read}`",
    )


@pytest.mark.parametrize("text", ["numpy[version='>=1.20']", "python[build_number=1]", "numpy"])
def test_conda_bracket_syntax_is_not_extras(text: str) -> None:
    parsed = parse_environment_text(
        f"dependencies:\n  - {text}\n", source="environment.yml", base_dir=Path(".")
    )
    assert parsed.spec.conda == [RawDependency(text, "environment.yml", 2)]
    assert parsed.warnings == ()
