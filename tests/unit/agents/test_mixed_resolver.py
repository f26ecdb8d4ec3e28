"""The mixed resolver's pieces: conda's python for uv, the held names, the stubs left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.agents.mixed_resolver import drop_held, held_packages, python_version
from envd.agents.pylock import read_pylock
from envd.agents.pypi_names import PypiNames
from envd.agents.pypi_target import pypi_target
from envd.description import ResolvedPackage
from envd.errors import InternalError, InvalidSpecError
from envd.spec import EnvType, RawDependency, RawSpec, normalize_spec

STUBS = "http://127.0.0.1:4000/simple"
INDEX = "https://pypi.example/simple"
PY = ("python >=3.9,<3.10.0a0",)


def conda(name: str, version: str, depends: tuple[str, ...] = PY) -> ResolvedPackage:
    return ResolvedPackage(
        kind="conda", name=name, version=version, build="0", channel="https://c.example/cf",
        url=f"https://c.example/cf/{name}.conda", filename=f"{name}-{version}-0.conda",
        sha256="0" * 64, md5=None, size=1, subdir="linux-64", depends=depends,
    )  # fmt: skip


SOLUTION = [
    conda("python", "3.9.19", ("libzlib",)),
    conda("six", "1.16.0"),
    conda("pytorch", "2.1.0"),
    conda("libzlib", "1.2.13", ()),
    conda("openssl", "3.3.1w", ()),
    conda("pyyaml", "6.0.1_1"),
]


def test_uv_resolves_for_the_conda_python() -> None:
    assert python_version(SOLUTION, "linux-64") == "3.9.19"
    assert python_version([conda("python", "3.13.0rc1", ())], "linux-64") == "3.13"
    with pytest.raises(InvalidSpecError) as none:
        python_version(SOLUTION[1:], "osx-arm64")
    assert none.value.message == (
        "failed to resolve the PyPI part of the mixed spec for `osx-arm64`: the conda solution "
        "has no `python` to resolve the PyPI requirements for"
    )
    assert none.value.hint is not None and "add `python` to the conda dependencies" in (
        none.value.hint
    )


def test_held_names_follow_the_mapping_at_pep440_versions() -> None:
    held = held_packages(SOLUTION, PypiNames({"libzlib": "zlib-wrapper"}))
    assert [(h.name, h.version, h.conda_name) for h in held] == [
        ("pyyaml", "6.0.1.1", "pyyaml"),
        ("six", "1.16.0", "six"),
        ("torch", "2.1.0", "pytorch"),
        ("zlib-wrapper", "1.2.13", "libzlib"),
    ]


LOCK = f"""
lock-version = "1.0"
[[packages]]
name = "six"
version = "1.16.0"
index = "{STUBS}"
wheels = [{{ url = "http://127.0.0.1:4000/files/six-1.16.0-py3-none-any.whl", hashes = {{ sha256 = "{"1" * 64}" }} }}]

[[packages]]
name = "envd-uses-six"
version = "1.0"
wheels = [{{ url = "https://pypi.example/files/envd_uses_six-1.0-py3-none-any.whl", hashes = {{ sha256 = "{"2" * 64}" }} }}]
"""


def test_the_stubs_are_left_out_of_the_resolution() -> None:
    packages = read_pylock(LOCK, pypi_target("linux-64", "3.9.19", {}), [INDEX])
    held = held_packages(SOLUTION, PypiNames())
    assert [p.name for p in drop_held(packages, held, STUBS)] == ["envd-uses-six"]


def test_a_held_name_that_uv_took_elsewhere_is_refused() -> None:
    packages = read_pylock(LOCK, pypi_target("linux-64", "3.9.19", {}), [INDEX])
    newer = held_packages([conda("six", "1.17.0")], PypiNames())
    with pytest.raises(
        InternalError, match=r"uv chose `six 1.16.0` .* conda provides `six 1.17.0`"
    ):
        drop_held(packages, newer, STUBS)
    other_port = "http://127.0.0.1:4001/simple"
    with pytest.raises(InternalError, match=r"uv chose `six 1.16.0` from `http://127.0.0.1:4000/"):
        drop_held(packages, held_packages(SOLUTION, PypiNames()), other_port)
    not_held = held_packages([conda("python", "3.9.19", ())], PypiNames())
    with pytest.raises(InternalError, match="conda provides no such package"):
        drop_held(packages, not_held, STUBS)


def test_a_spec_with_both_kinds_is_mixed() -> None:
    spec = normalize_spec(RawSpec(conda=[RawDependency("python=3.9"), RawDependency("six")],
                                  pypi=[RawDependency("requests")]))  # fmt: skip
    assert spec.env_type is EnvType.MIXED and str(spec.env_type) == "mixed"


def test_the_job_runner_sends_mixed_specs_to_the_mixed_resolver(tmp_path: Path) -> None:
    from envd.agents.conda_resolver import CondaResolver
    from envd.agents.job_runner import JobRunner
    from envd.agents.mixed_resolver import MixedResolver
    from envd.agents.pypi_resolver import PypiResolver
    from envd.channels import DEFAULT_CHANNEL_ALIAS
    from envd.errors import PypiNotAvailableError

    conda_resolver = CondaResolver(tmp_path, DEFAULT_CHANNEL_ALIAS, 1.0)
    pypi_resolver = PypiResolver(tmp_path)
    mixed = MixedResolver(conda_resolver, pypi_resolver, PypiNames())
    spec = normalize_spec(RawSpec(conda=[RawDependency("six")], pypi=[RawDependency("x")]))

    def runner(**resolvers: object) -> JobRunner:
        return JobRunner(resolver=conda_resolver, catalog=None, archives=None, clock=None,  # type: ignore[arg-type]
                         agent_id="agent-t", host="h", **resolvers)  # type: ignore[arg-type]  # fmt: skip

    assert runner(pypi_resolver=pypi_resolver, mixed_resolver=mixed).resolver_for(spec) is mixed
    with pytest.raises(PypiNotAvailableError) as missing:
        runner(pypi_resolver=pypi_resolver).resolver_for(spec)
    assert missing.value.message == (
        "failed to resolve a `mixed` spec: agent `agent-t` has no mixed conda + PyPI resolver"
    )
