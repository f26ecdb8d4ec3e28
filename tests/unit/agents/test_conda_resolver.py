"""CondaResolver on real channels over loopback HTTP: solves, deadlines, cancellation, and every
missing package named at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from envd.agents.conda_resolver import CondaResolver
from envd.agents.credentials import ChannelCredentials
from envd.agents.resolver import Resolution, Resolver, ResolveRequest
from envd.channels import DEFAULT_CHANNEL_ALIAS
from envd.errors import PackageNotFoundError, StageTimeoutError, UnsatisfiableError
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec
from envd.spec_files import read_environment_file
from faulty_channel import stalled_server
from harness import EXAMPLE_CHANNEL, ROOT, ChannelServer, serve_channel, wait_for

NUMPY_ENV = ROOT / "tests" / "fixtures" / "specs" / "numpy" / "environment.yml"


def spec_of(channels: list[str], deps: list[str]) -> Spec:
    return normalize_spec(RawSpec(conda=[RawDependency(d) for d in deps], channels=channels))


def resolver(tmp_path: Path, *, repodata_timeout: float = 30.0) -> CondaResolver:
    return CondaResolver(
        tmp_path / "repodata", DEFAULT_CHANNEL_ALIAS, 30.0, repodata_timeout=repodata_timeout
    )


def resolve(resolver: Resolver, spec: Spec, platform: str = "linux-64") -> Resolution:
    return asyncio.run(resolver.resolve(ResolveRequest(spec, platform)))


def test_solves_on_the_example_channel_then_answers_warm_without_refetching(
    tmp_path: Path, channel: ChannelServer
) -> None:
    conda = resolver(tmp_path)
    first = resolve(conda, spec_of([channel.url], ["python=3.9"]))
    names = [p.name for p in first.packages]
    assert names == sorted(names) and "python" in names
    assert all(p.formats == () and p.sha256 for p in first.packages)
    assert first.solver.name == "py-rattler (resolvo)"
    fetched = len(channel.requests)
    second = resolve(conda, spec_of([channel.url], ["python=3.9", "pip"]))
    assert {"python", "pip"} <= {p.name for p in second.packages}
    assert len(channel.requests) == fetched  # the gateway held the repodata


def test_a_stalled_channel_fails_within_the_repodata_timeout_naming_its_url(
    tmp_path: Path, channel: ChannelServer
) -> None:
    with stalled_server() as stalled:
        spec = spec_of([channel.url, stalled.url], ["python=3.9"])
        start = time.monotonic()
        with pytest.raises(StageTimeoutError) as info:
            resolve(resolver(tmp_path, repodata_timeout=1.0), spec)
        elapsed = time.monotonic() - start
        assert stalled.connections  # it was asked, and never answered
        wait_for(stalled.closed_by_client, 5, "the resolver to hang up")
    assert info.value.message == (
        f"timed out fetching repodata from `{stalled.url}` for `linux-64` (and `noarch`): "
        "not done within 1 s"
    )
    assert info.value.hint is not None and "`--repodata-timeout`" in info.value.hint
    assert 1.0 <= elapsed < 5.0


def test_cancelling_a_resolve_drops_its_requests_and_leaves_the_gateway_usable(
    tmp_path: Path, channel: ChannelServer
) -> None:
    conda = resolver(tmp_path)

    async def cancel_while_stalled(url: str) -> None:
        task = asyncio.create_task(conda.resolve(ResolveRequest(spec_of([url], ["x"]), "linux-64")))
        while not stalled.connections:
            await asyncio.sleep(0.02)
        task.cancel()
        start = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - start < 2.0

    with stalled_server() as stalled:
        asyncio.run(cancel_while_stalled(stalled.url))
        wait_for(stalled.closed_by_client, 5, "the cancelled requests to be dropped")
    assert "python" in {p.name for p in resolve(conda, spec_of([channel.url], ["python"])).packages}


def test_every_missing_package_is_named_with_suggestions(
    tmp_path: Path, channel: ChannelServer
) -> None:
    spec = spec_of([channel.url], ["python=3.9", "zlb", "opensssl", "nonexistent-pkg", "ipython"])
    with pytest.raises(PackageNotFoundError) as info:
        resolve(resolver(tmp_path), spec)
    # `ipython` is not offered `python`: the spec asks for python already
    assert info.value.message == (
        "packages `ipython`, `nonexistent-pkg`, `opensssl`, `zlb` not found in channels "
        f"`{channel.url}` for `linux-64` (and `noarch`); did you mean `openssl`, `zlib`?"
    )
    assert info.value.hint == "check the names' spelling and the channel list"


def test_a_single_missing_package_reads_in_the_singular(
    tmp_path: Path, channel: ChannelServer
) -> None:
    with pytest.raises(PackageNotFoundError) as info:
        resolve(
            resolver(tmp_path), spec_of([channel.url], ["python", "nonexistent-pkg"]), "osx-arm64"
        )
    assert info.value.message == (
        f"package `nonexistent-pkg` not found in channels `{channel.url}` for `osx-arm64` "
        "(and `noarch`)"
    )


def test_numpys_environment_file_lists_every_package_the_channel_lacks(
    tmp_path: Path, channel: ChannelServer
) -> None:
    raw = read_environment_file(NUMPY_ENV).spec
    raw.channels = [channel.url]  # the example channel: python 3.9 and its dependencies only
    with pytest.raises(PackageNotFoundError) as info:
        resolve(resolver(tmp_path), normalize_spec(raw))
    missing = [
        "breathe", "ccache", "cffi", "compilers", "cython", "cython-lint", "doxygen",
        "gitpython", "hypothesis", "ipython", "jupyterlite-pyodide-kernel", "jupyterlite-sphinx",
        "matplotlib", "meson-python", "mypy", "ninja", "nomkl", "numpydoc", "openblas", "orjson",
        "pandas", "pkg-config", "pydata-sphinx-theme", "pytest", "pytest-cov", "pytest-xdist",
        "ruff", "scipy", "sphinx", "sphinx-copybutton", "sphinx-design", "spin", "towncrier",
    ]  # fmt: skip
    assert info.value.message == (
        f"packages {', '.join(f'`{n}`' for n in missing)} not found in channels "
        f"`{channel.url}` for `linux-64` (and `noarch`)"
    )  # python, setuptools and tzdata are there (in other versions: that is the solver's call)


def test_a_known_name_without_a_matching_version_is_unsatisfiable(
    tmp_path: Path, channel: ChannelServer
) -> None:
    with pytest.raises(UnsatisfiableError, match=r"failed to solve the spec for `linux-64`: "):
        resolve(resolver(tmp_path), spec_of([channel.url], ["python>=3.12"]))


def test_a_token_reaches_only_repodata_requests_of_its_own_origin(tmp_path: Path) -> None:
    """rattler's header hook sees hosts only: a spec naming a second port of the private
    channel's host gets no token sent to either (and the private channel, alone, gets it)."""
    demo = ROOT / "examples" / "channels" / "archives-demo"
    with serve_channel(demo) as private, serve_channel(demo) as other:
        origin = private.url.removeprefix("http://")
        credentials = ChannelCredentials({origin: "s3cret"}, None, frozenset({origin}))
        conda = CondaResolver(tmp_path / "repodata", DEFAULT_CHANNEL_ALIAS, 30.0,
                              credentials.authorization, repodata_timeout=30.0)  # fmt: skip
        resolve(conda, spec_of([private.url, other.url], ["envd-demo-hello"]))
        assert private.authorizations == [] and other.authorizations == []
        assert other.requests  # the other port was asked, without the token
        resolve(conda, spec_of([private.url], ["envd-demo-hello"]))
    assert private.authorizations and set(private.authorizations) == {"Bearer s3cret"}
    assert other.authorizations == []


def test_past_its_warm_channels_the_oldest_repodata_leaves_memory(
    tmp_path: Path, channel: ChannelServer
) -> None:
    """An agent's memory is bounded by `warm_channels`, not by how many channels requests
    name: the oldest is forgotten (and fetched again when named again)."""
    conda = CondaResolver(tmp_path / "repodata", DEFAULT_CHANNEL_ALIAS, 30.0, warm_channels=1)
    with serve_channel(EXAMPLE_CHANNEL) as other:
        resolve(conda, spec_of([channel.url], ["python=3.9"]))
        resolve(conda, spec_of([other.url], ["python=3.9"]))
        assert list(conda._loaded) == [(frozenset(), other.url, "linux-64")]
        again = resolve(conda, spec_of([channel.url], ["pip"]))
        assert "pip" in {p.name for p in again.packages}
        assert list(conda._loaded) == [(frozenset(), channel.url, "linux-64")]
