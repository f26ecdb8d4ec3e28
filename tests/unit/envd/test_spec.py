"""Spec normalization (envd.spec) and assembling a spec from options (envd.spec_input)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from envd.errors import InvalidSpecError, RequestTooLargeError, UnknownPlatformError
from envd.spec import (
    EnvType,
    PypiDependency,
    RawDependency,
    RawSpec,
    normalize_conda,
    normalize_pypi,
    normalize_python,
    normalize_spec,
    spec_from_canonical,
)
from envd.spec_input import (
    MAX_DEPENDENCIES,
    load_spec,
    parse_virtual_packages,
    virtual_packages_from_environ,
)

# -- envd.spec -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3.8", "3.8.*"),
        ("3.11.4", "3.11.4.*"),
        (">=3.9,<3.12", ">=3.9,<3.12"),
        ("3.9.*", "3.9.*"),
        # each alternative as a bare version alone: `3.9|3.10` is `3.9.*|3.10.*`
        ("3.9|3.10", "3.9.*|3.10.*"),
        (" 3.9 | 3.10.* | >=3.12 ", "3.9.*|3.10.*|>=3.12"),
        ("3.9,!=3.9.1|3.11", "==3.9,!=3.9.1|3.11.*"),  # `3.9` within an and-group is `==3.9`
    ],
)
def test_python_constraint(text: str, expected: str) -> None:
    assert normalize_python(text) == expected


def test_bad_python_constraint() -> None:
    with pytest.raises(InvalidSpecError) as caught:
        normalize_python(">>3")
    assert caught.value.message == (
        "failed to parse python constraint `>>3` at --python: invalid operator '>>'"
    )
    assert caught.value.hint is not None


def test_conda_error_names_where() -> None:
    with pytest.raises(InvalidSpecError) as caught:
        normalize_conda(RawDependency("numpy >>1", "environment.yml", 7))
    assert caught.value.message == (
        "failed to parse conda spec `numpy >>1` at environment.yml:7: "
        "unable to parse version spec: >>1"
    )


def test_pypi_error_names_where() -> None:
    with pytest.raises(InvalidSpecError, match=r"^failed to parse PyPI requirement `requests>>` "):
        normalize_pypi(RawDependency("requests>>", "requirements.txt", 2))
    with pytest.raises(InvalidSpecError, match=r" at requirements\.txt:2: "):
        normalize_pypi(RawDependency("requests>>", "requirements.txt", 2))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Requests >= 2.31", "requests>=2.31"),
        ("Foo[B,a]>=1,<2", "foo[a,b]<2,>=1"),
        ("foo; python_version < '3.12'", 'foo; python_version < "3.12"'),
        (
            "Foo @ https://x.org/foo-1.0.tar.gz ; sys_platform == 'linux'",
            'foo @ https://x.org/foo-1.0.tar.gz ; sys_platform == "linux"',
        ),
    ],
)
def test_pypi_requirement_form(text: str, expected: str) -> None:
    normalized = normalize_pypi(RawDependency(text))
    assert normalized.requirement == expected
    assert str(Requirement(normalized.requirement)).replace(" ", "") == expected.replace(" ", "")


def test_unknown_selector_is_refused() -> None:
    with pytest.raises(InvalidSpecError, match=r"^unknown platform selector `\[py38\]` at e:3$"):
        normalize_conda(RawDependency("numpy", "e", 3, selector="py38"))


def test_python_folds_only_when_plain() -> None:
    spec = normalize_spec(
        RawSpec(
            conda=[
                RawDependency("python >=3.9", category="dev"),
                RawDependency("python 3.10", selector="linux"),
                RawDependency("pandas"),
            ],
            python="3.11",
        )
    )
    assert spec.python == "3.11.*"
    assert [d.spec for d in spec.conda] == ["pandas", "python >=3.9", "python ==3.10"]


def test_conflicting_alternatives_for_python() -> None:
    raw = RawSpec(python="3.9|3.10", conda=[RawDependency("python 3.11")])
    with pytest.raises(InvalidSpecError, match=r"^cannot combine python constraints "):
        normalize_spec(raw)


def test_specs_per_platform() -> None:
    spec = normalize_spec(
        RawSpec(
            conda=[RawDependency("numpy", selector="linux"), RawDependency("pandas")],
            pypi=[RawDependency("psutil", selector="win"), RawDependency("rich")],
            python="3.11",
        )
    )
    assert spec.conda_specs_for("linux-64") == ["numpy", "pandas", "python 3.11.*"]
    assert spec.conda_specs_for("osx-arm64") == ["pandas", "python 3.11.*"]
    assert spec.pypi_requirements_for("win-64") == ["psutil", "rich"]
    assert spec.pypi_requirements_for("linux-aarch64") == ["rich"]


def test_env_type() -> None:
    conda = normalize_spec(RawSpec(conda=[RawDependency("numpy")]))
    pypi = normalize_spec(RawSpec(pypi=[RawDependency("numpy")], python="3.11"))
    mixed = normalize_spec(RawSpec(conda=[RawDependency("pip")], pypi=[RawDependency("rich")]))
    assert (conda.env_type, pypi.env_type, mixed.env_type) == (
        EnvType.CONDA_ONLY,
        EnvType.PYPI_ONLY,
        EnvType.MIXED,
    )
    assert pypi.conda_specs_for("linux-64") == []


def test_same_pypi_requirement_under_two_selectors() -> None:
    spec = normalize_spec(
        RawSpec(pypi=[RawDependency("requests", selector="linux"), RawDependency("requests")])
    )
    assert spec.pypi == (
        PypiDependency("requests", "requests"),
        PypiDependency("requests", "requests", selector="linux"),
    )


def test_canonical_round_trip() -> None:
    spec = load_spec(
        packages=["numpy>=1.20", "blas[build=openblas]"],
        pypi=["rich"],
        python="3.11",
        channels=["conda-forge"],
        virtual_packages=["__cuda=12.0"],
    ).spec
    assert spec_from_canonical(json.loads(spec.canonical_bytes())) == spec


def test_virtual_package_names_start_with_underscores() -> None:
    with pytest.raises(InvalidSpecError, match=r"^`glibc` is not a virtual package name$"):
        normalize_spec(RawSpec(virtual_packages={"glibc": "2.28"}))


# -- envd.spec_input -----------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_files_then_inline_options(tmp_path: Path) -> None:
    first = _write(
        tmp_path / "a.yml",
        "channels: [conda-forge]\nplatforms: [linux-64, osx-arm64]\ndependencies: [numpy]\n",
    )
    second = _write(
        tmp_path / "b.yml",
        "channels: [bioconda, conda-forge]\nplatforms: [win-64, linux-64]\n"
        "dependencies: [samtools]\n",
    )
    reqs = _write(tmp_path / "requirements.txt", "rich\n")
    loaded = load_spec(
        env_files=[first, second],
        requirement_files=[reqs],
        packages=["pandas"],
        pypi=["attrs"],
        channels=["my-channel", "conda-forge"],
    )
    assert loaded.platforms == ("linux-64", "osx-arm64", "win-64")
    assert loaded.spec.channels == ("conda-forge", "bioconda", "my-channel")
    assert [d.name for d in loaded.spec.conda] == ["numpy", "pandas", "samtools"]
    assert [d.name for d in loaded.spec.pypi] == ["attrs", "rich"]
    assert loaded.warnings == ()


def test_error_in_a_file_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "environment.yml", "dependencies:\n  - numpy\n  - pandas >>1\n")
    with pytest.raises(InvalidSpecError) as caught:
        load_spec(env_files=[path])
    assert caught.value.message == (
        f"failed to parse conda spec `pandas >>1` at {path}:3: unable to parse version spec: >>1"
    )


def test_inline_error_names_the_option() -> None:
    with pytest.raises(InvalidSpecError, match=r"^failed to parse conda spec `>=1` at --package: "):
        load_spec(packages=[">=1"])
    with pytest.raises(InvalidSpecError, match=r" at --pypi: "):
        load_spec(pypi=["requests>>"])


def test_inline_pypi_option_is_refused() -> None:
    with pytest.raises(InvalidSpecError) as caught:
        load_spec(pypi=["-e ."])
    assert caught.value.message == (
        "failed to parse PyPI requirement `-e .` at --pypi: options are not requirements"
    )


def test_inline_pypi_vcs_url_gets_its_name() -> None:
    spec = load_spec(pypi=["git+https://github.com/dask/distributed@2024.1.0"]).spec
    assert spec.pypi[0].requirement == (
        "distributed @ git+https://github.com/dask/distributed@2024.1.0"
    )


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(InvalidSpecError) as caught:
        load_spec(env_files=[missing])
    assert caught.value.message == f"failed to read `{missing}`: no such file"
    with pytest.raises(InvalidSpecError, match="no such file"):
        load_spec(requirement_files=[tmp_path / "nope.txt"])


def test_too_many_dependencies() -> None:
    packages = [f"pkg{i}" for i in range(MAX_DEPENDENCIES + 1)]
    with pytest.raises(RequestTooLargeError) as caught:
        load_spec(packages=packages)
    assert caught.value.message == (
        "failed to load spec: 5001 dependencies is over the limit of 5000"
    )
    assert len(load_spec(packages=packages[:MAX_DEPENDENCIES]).spec.conda) == MAX_DEPENDENCIES


def test_file_over_one_mib(tmp_path: Path) -> None:
    path = _write(tmp_path / "requirements.txt", "# padding\n" * 110_000)
    with pytest.raises(RequestTooLargeError) as caught:
        load_spec(requirement_files=[path])
    assert caught.value.message == (
        f"failed to read `{path}`: 1100000 bytes is over the limit of 1048576 bytes"
    )


def test_unknown_platform_in_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "e.yml", "platforms:\n  - linux-64\n  - amiga-68k\ndependencies: []\n")
    with pytest.raises(UnknownPlatformError, match=rf"^unknown platform `amiga-68k` at {path}:3$"):
        load_spec(env_files=[path])


def test_skipped_editables_are_reported(tmp_path: Path) -> None:
    path = _write(tmp_path / "e.yml", "dependencies:\n  - pip:\n    - rich\n    - -e .\n")
    loaded = load_spec(env_files=[path])
    assert loaded.warnings == (
        f"skipped editable pip entry `-e .` at {path}:4: install it after the environment "
        "is created",
    )
    assert [d.requirement for d in loaded.spec.pypi] == ["rich"]


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["__glibc=2.28"], {"__glibc": "2.28"}),
        (["__cuda=12.0", "__CUDA=11.8"], {"__cuda": "11.8"}),
        (["__archspec=1=x86_64"], {"__archspec": "1=x86_64"}),
        (["__cuda="], {"__cuda": ""}),
    ],
)
def test_virtual_packages(items: list[str], expected: dict[str, str]) -> None:
    assert parse_virtual_packages(items) == expected
    assert dict(load_spec(virtual_packages=items).spec.virtual_packages) == expected


@pytest.mark.parametrize("item", ["glibc=2.28", "__glibc", "__=1", "=2.28"])
def test_malformed_virtual_package(item: str) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        load_spec(virtual_packages=[item])
    assert caught.value.message == (
        f"failed to parse virtual package `{item}`: expected `__NAME=VERSION`"
    )


def test_virtual_package_version_must_parse() -> None:
    with pytest.raises(
        InvalidSpecError, match=r"^failed to parse virtual package `__glibc=2\.\.8`"
    ):
        load_spec(virtual_packages=["__glibc=2..8"])


def test_virtual_packages_from_environ() -> None:
    environ = {
        "CONDA_OVERRIDE_GLIBC": "2.28",
        "CONDA_OVERRIDE_CUDA": "",
        "CONDA_OVERRIDE_OSX": " 12.0 ",
        "HOME": "/root",
    }
    assert virtual_packages_from_environ(environ) == ["__cuda=", "__glibc=2.28", "__osx=12.0"]
    assert virtual_packages_from_environ({}) == []


@pytest.mark.parametrize(
    "url",
    [
        "https://user:secret@conda.example.com/private",
        "https://conda.example.com/t/tk-123abc/private",
    ],
)
def test_channel_urls_with_credentials_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(InvalidSpecError, match="carries credentials") as info:
        load_spec(packages=["numpy"], channels=[url])
    assert "secret" not in info.value.message and "tk-123abc" not in info.value.message
    assert info.value.hint is not None and "netrc" in info.value.hint


def test_exclude_newer_is_one_utc_spelling() -> None:
    from envd.spec import normalize_exclude_newer

    assert normalize_exclude_newer("2024-06-01") == "2024-06-01T00:00:00Z"
    assert normalize_exclude_newer("2024-06-01T14:00:00+02:00") == "2024-06-01T12:00:00Z"
    assert normalize_exclude_newer(" 2024-06-01T12:00:00.5Z ") == "2024-06-01T12:00:00.500000Z"
    with pytest.raises(InvalidSpecError, match="the time has no timezone"):
        normalize_exclude_newer("2024-06-01T12:00:00")
    with pytest.raises(InvalidSpecError, match="not an RFC 3339 time or a date"):
        normalize_exclude_newer("last tuesday")


# -- names the system refuses: E100 naming the file, never an OSError --------------------------
LONG_NAME = "a" * 300  # past every common file system's 255-byte limit for one name


def test_file_names_the_system_refuses_are_invalid_spec(tmp_path: Path) -> None:
    long_path = tmp_path / LONG_NAME
    for as_env_file in (False, True):
        with pytest.raises(InvalidSpecError) as caught:
            if as_env_file:
                load_spec(env_files=[long_path])
            else:
                load_spec(requirement_files=[long_path])
        assert caught.value.message == f"failed to read `{long_path}`: File name too long"
    loop = tmp_path / "loop.txt"
    loop.symlink_to(loop)
    with pytest.raises(InvalidSpecError) as looped:
        load_spec(requirement_files=[loop])
    assert looped.value.message == f"failed to read `{loop}`: Too many levels of symbolic links"
    with pytest.raises(InvalidSpecError) as folder:
        load_spec(requirement_files=[tmp_path])
    assert folder.value.message == f"failed to read `{tmp_path}`: Is a directory"


def test_includes_the_system_refuses_are_invalid_spec(tmp_path: Path) -> None:
    requirements = _write(tmp_path / "requirements.txt", f"-r {LONG_NAME}\n")
    with pytest.raises(InvalidSpecError) as caught:
        load_spec(requirement_files=[requirements])
    assert caught.value.message == (
        f"failed to include `{LONG_NAME}` at {requirements}:1: File name too long"
    )
    env = _write(tmp_path / "e.yml", f"dependencies:\n  - pip:\n    - -r {LONG_NAME}\n")
    with pytest.raises(InvalidSpecError, match=r"^failed to include `a{300}` at .*e\.yml:3: File"):
        load_spec(env_files=[env])


def test_a_stream_without_a_size_is_read_up_to_the_limit() -> None:
    with pytest.raises(RequestTooLargeError) as caught:
        load_spec(requirement_files=[Path("/dev/zero")])
    assert caught.value.message == (
        "failed to read `/dev/zero`: more than 1048576 bytes is over the limit of 1048576 bytes"
    )


def test_channel_folders_the_system_refuses_are_invalid_spec(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(InvalidSpecError, match=r"^failed to read channel folder `~no-such-user-"):
        load_spec(packages=["python"], channels=["~no-such-user-of-envd/channel"])
    env = _write(tmp_path / "e.yml", "channels:\n  - ./loop/channel\ndependencies: [python]\n")
    with pytest.raises(InvalidSpecError, match=r"^failed to read channel folder `./loop/channel`"):
        load_spec(env_files=[env])


def test_find_links_enter_the_req_id_only_when_given_and_cross_the_wire() -> None:
    from envd.ids import req_id
    from envd.wire import raw_spec_from_pb, spec_to_pb

    plain = normalize_spec(RawSpec(pypi=[RawDependency("foo")]))
    assert "pypi_find_links" not in plain.to_canonical()  # every older req_id stays the same
    links = ["https://b.example/links/", "https://a.example/links/", "https://b.example/links/"]
    linked = normalize_spec(RawSpec(pypi=[RawDependency("foo")], pypi_find_links=links))
    assert linked.pypi_find_links == ("https://b.example/links/", "https://a.example/links/")
    assert linked.to_canonical()["pypi_find_links"] == list(linked.pypi_find_links)
    assert req_id(linked) != req_id(plain)
    reordered = normalize_spec(RawSpec(pypi=[RawDependency("foo")], pypi_find_links=links[1:]))
    assert req_id(reordered) != req_id(linked)  # order is priority
    assert spec_from_canonical(json.loads(linked.canonical_bytes())) == linked
    assert normalize_spec(raw_spec_from_pb(spec_to_pb(linked))) == linked
    assert normalize_spec(raw_spec_from_pb(spec_to_pb(plain))) == plain
