"""Mixed conda + PyPI: conda python from the bundled channel, PyPI from a generated index, uv real."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conda_python import python_channel
from envd.agents.conda_resolver import CondaResolver
from envd.agents.fetch import Fetcher
from envd.agents.mixed_resolver import MixedResolver
from envd.agents.native_build import NativeBuildNeeded, NativeBuilds
from envd.agents.pypi_names import PypiNames
from envd.agents.pypi_resolver import PypiResolver
from envd.agents.resolver import Resolution, ResolveRequest
from envd.channels import DEFAULT_CHANNEL_ALIAS
from envd.client.api import EnvdClient
from envd.errors import UnsatisfiableError, WheelBuildError
from envd.progress import Outcome
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec
from envd.store.local import LocalStore
from harness import ChannelServer, Cluster, serve_channel
from pypi_index import PypiIndex, Sdist, Wheel, serve_index

pytestmark = pytest.mark.integration
# six 1.16.0 is what the bundled conda-forge subset has for python 3.9; the index offers a
# newer six (1.99, and 2.0 uploaded later) that uv would pick if it were free to
WHEELS = [
    Wheel("envd-uses-six", "1.0", requires=("six>=1.10", "envd-helper")),
    Wheel("envd-helper", "1.0"),
    Wheel("six", "1.99"),
    Wheel("six", "2.0", uploaded="2025-06-01T00:00:00Z"),
]


@pytest.fixture
def index(tmp_path: Path) -> Iterator[PypiIndex]:
    with serve_index(tmp_path / "index", WHEELS) as served:
        yield served


def mixed_spec(channel: str, index: PypiIndex, *pypi: str, extra: tuple[str, ...] = ()) -> Spec:
    return normalize_spec(
        RawSpec(
            conda=[RawDependency(c) for c in ("python=3.9", "six")],
            pypi=[RawDependency(r) for r in pypi],
            channels=[channel],
            pypi_indexes=[index.url, *extra],
            exclude_newer="2025-01-01",
        )
    )


def resolve(tmp_path: Path, spec: Spec, platform: str = "linux-64") -> Resolution:
    conda = CondaResolver(tmp_path / "repodata", DEFAULT_CHANNEL_ALIAS, 60.0)
    pypi = PypiResolver(tmp_path / "pypi", attempts=1)
    mixed = MixedResolver(conda, pypi, PypiNames())
    return asyncio.run(mixed.resolve(ResolveRequest(spec, platform)))


def test_conda_provided_names_are_held(
    tmp_path: Path, channel: ChannelServer, index: PypiIndex
) -> None:
    """six comes from conda (1.16.0), never from the indexes' newer ones (`--index-url` and
    `--extra-index-url` alike: neither is even asked for six), and is not re-added as a PyPI
    package; envd-uses-six's other dependency comes from PyPI; the python version uv resolves
    for is conda's 3.9."""
    with serve_index(tmp_path / "extra", [Wheel("six", "3.0")]) as extra:
        spec = mixed_spec(channel.url, index, "envd-uses-six", extra=(extra.url,))
        resolution = resolve(tmp_path, spec)
    assert not any(path.startswith("/simple/six") for path in extra.requests), extra.requests
    kinds = {(p.kind, p.name): p.version for p in resolution.packages}
    assert kinds[("conda", "six")] == "1.16.0"
    assert kinds[("conda", "python")].startswith("3.9.")
    pypi = {name: version for (kind, name), version in kinds.items() if kind == "pypi"}
    assert pypi == {"envd-uses-six": "1.0", "envd-helper": "1.0"}
    assert not any(path.startswith("/simple/six") for path in index.requests), index.requests
    assert resolution.solver.name.startswith("py-rattler (resolvo) 0.")
    assert resolution.solver.name.endswith(" + uv")


def test_a_pypi_pin_the_conda_version_does_not_meet_names_it(
    tmp_path: Path, channel: ChannelServer, index: PypiIndex
) -> None:
    with pytest.raises(UnsatisfiableError) as failed:
        resolve(tmp_path, mixed_spec(channel.url, index, "six>=1.99"))
    assert "held at the conda solution's versions: `six 1.16.0` (conda `six 1.16.0`)" in (
        failed.value.message
    )


def test_pypi_requirements_for_other_platforms_leave_the_conda_solution(
    tmp_path: Path, channel: ChannelServer, index: PypiIndex
) -> None:
    spec = mixed_spec(channel.url, index, 'envd-uses-six; sys_platform == "win32"')
    resolution = resolve(tmp_path, spec)
    assert {p.kind for p in resolution.packages} == {"conda"}
    assert resolution.solver.name == "py-rattler (resolvo)" and index.requests == []


def test_a_direct_url_for_a_conda_provided_name_is_refused(
    tmp_path: Path, channel: ChannelServer, index: PypiIndex
) -> None:
    url = f"{index.url.removesuffix('/simple')}/files/six-1.99-py3-none-any.whl"
    with pytest.raises(UnsatisfiableError) as failed:
        resolve(tmp_path, mixed_spec(channel.url, index, f"six @ {url}"))
    assert failed.value.message == (
        f"failed to resolve the mixed spec for `linux-64`: PyPI requirement `six @ {url}` "
        "replaces conda package `six 1.16.0`, which provides `six`"
    )


def test_cluster_writes_a_mixed_description(
    cluster: Cluster, channel: ChannelServer, index: PypiIndex
) -> None:
    """Through the coordinator and a real agent: one description holds both kinds."""
    spec = mixed_spec(channel.url, index, "envd-uses-six")
    cluster.start_daemon()
    cluster.start_agent("agent", ["linux-64"])
    with EnvdClient(cluster.address) as client:
        result = client.resolve(spec, ["linux-64"], no_archives=True)
    event = result.events["linux-64"]
    assert event.outcome is Outcome.RESOLVED, event.error
    description = event.description
    assert description is not None and description["env_type"] == "mixed"
    by_kind = {(p["kind"], p["name"]) for p in description["packages"]}
    assert {("conda", "python"), ("conda", "six"), ("pypi", "envd-uses-six"),
            ("pypi", "envd-helper")} <= by_kind  # fmt: skip
    assert ("pypi", "six") not in by_kind


def test_a_mixed_build_uses_no_host_python_and_fails_without_conda_archives(
    tmp_path: Path, channel: ChannelServer
) -> None:
    """An sdist-only PyPI package in a mixed spec is built with the environment's own python
    (conda's 3.9 here): a non-native agent hands the job back naming no python (any native
    agent can build it), and a native one whose host pythons are all other versions installs
    conda's python — which fails clearly here, the bundled channel having no archives —
    rather than building with a host interpreter."""
    with serve_index(tmp_path / "index", wheels=[], sdists=[Sdist("envd-pure", "1.0")]) as index:
        spec = mixed_spec(channel.url, index, "envd-pure")
        conda = CondaResolver(tmp_path / "repodata", DEFAULT_CHANNEL_ALIAS, 60.0)
        outcomes: dict[str, BaseException] = {}
        for native in ("osx-arm64", "linux-64"):
            builds = NativeBuilds(
                LocalStore(tmp_path / "store"), Fetcher(attempts=1), tmp_path / native,
                agent_id="linux", native_platform=native, pythons={"3.11": sys.executable},
            )  # fmt: skip
            pypi = PypiResolver(tmp_path / "pypi", attempts=1, builds=builds)
            mixed = MixedResolver(conda, pypi, PypiNames())
            with pytest.raises((NativeBuildNeeded, WheelBuildError)) as failed:
                asyncio.run(mixed.resolve(ResolveRequest(spec, "linux-64")))
            outcomes[native] = failed.value
            assert builds.built == 0
    needed = outcomes["osx-arm64"]
    assert isinstance(needed, NativeBuildNeeded)
    assert (needed.platform, needed.python) == ("linux-64", "")
    assert needed.builds == ("envd-pure 1.0 (sdist only)",)
    refused = outcomes["linux-64"]
    assert isinstance(refused, WheelBuildError), refused
    assert refused.message.startswith(
        "failed to build `envd-pure 1.0` for `linux-64`: the environment's python (`python 3.9."
    ), refused.message
    assert "could not be installed to build with: " in refused.message, refused.message
    assert not list((tmp_path / "linux-64").glob("build-prefixes/*/bin"))


def test_cluster_builds_a_mixed_sdist_with_the_environments_own_python(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Through the coordinator and a native linux-64 agent that has no host python to build
    with (`--no-own-build-python`): the sdist is built with `bin/python` of a build prefix
    holding the conda solution. Conda's python here is the test's stand-in (`conda_python`: a
    real `python 3.11.7` package whose interpreter scripts exec the host's, since no channel
    with real python archives is reachable), served from a loopback channel."""
    calls = tmp_path / "calls"
    python_channel(tmp_path / "channel", calls)
    with (
        serve_channel(tmp_path / "channel") as conda_channel,
        serve_index(tmp_path / "index", wheels=[], sdists=[Sdist("envd-pure", "1.0")]) as index,
    ):
        spec = normalize_spec(
            RawSpec(conda=[RawDependency("python=3.11"), RawDependency("envd-tool")], pypi=[RawDependency("envd-pure")],
                    channels=[conda_channel.url], pypi_indexes=[index.url])
        )  # fmt: skip
        cluster.start_daemon()
        agent = cluster.start_agent("linux", ["linux-64"], args=["--no-own-build-python"])
        with EnvdClient(cluster.address) as client:
            result = client.resolve(spec, ["linux-64"], no_archives=True)
    event = result.events["linux-64"]
    assert event.outcome is Outcome.RESOLVED, event.error
    description = event.description
    assert description is not None and description["env_type"] == "mixed"
    by_kind = {(p["kind"], p["name"]): p for p in description["packages"]}
    assert by_kind.keys() == {("conda", "python"), ("conda", "envd-tool"), ("pypi", "envd-pure")}
    assert by_kind[("conda", "python")]["version"] == "3.11.7"
    wheel = by_kind[("pypi", "envd-pure")]
    assert wheel["filename"] == "envd_pure-1.0-py3-none-any.whl"
    assert wheel["built"]["agent"] == "linux" and wheel["built"]["platform"] == "linux-64"
    prefixes = cluster.root / "cache-linux" / "build-prefixes"
    (prefix,) = [p for p in prefixes.iterdir() if (p / "conda-meta").is_dir()]
    interpreter = prefix / "bin" / "python"
    assert f"for linux-64 with python {interpreter}\n" in agent.log()
    assert str(interpreter) in calls.read_text()  # uv ran the prefix's interpreter


def test_a_mixed_sdist_and_its_backend_from_find_links_build_with_the_prefix_python(
    tmp_path: Path,
) -> None:
    """find-links x mixed x native builds: the sdist and setuptools are only on a flat links
    page; the mixed resolve hands the page to `uv build`, run by the build prefix's python
    (the agent has no host python)."""
    from pypi_index import SETUPTOOLS_WHEEL, serve_find_links

    calls = tmp_path / "calls"
    python_channel(tmp_path / "channel", calls)
    sdist = Sdist("envd-pure", "1.0")
    with (
        serve_channel(tmp_path / "channel") as conda_channel,
        serve_index(tmp_path / "index", [Wheel("envd-app", "1.0")]) as index,
        serve_find_links(tmp_path / "links", [], [sdist], [SETUPTOOLS_WHEEL]) as (links, asked),
    ):
        spec = normalize_spec(
            RawSpec(conda=[RawDependency("python=3.11"), RawDependency("envd-tool")],
                    pypi=[RawDependency("envd-pure")],
                    channels=[conda_channel.url], pypi_indexes=[index.url],
                    pypi_find_links=[links])
        )  # fmt: skip
        builds = NativeBuilds(
            LocalStore(tmp_path / "store"), Fetcher(attempts=1), tmp_path / "cache",
            agent_id="here", native_platform="linux-64", pythons={},
        )  # fmt: skip
        conda = CondaResolver(tmp_path / "repodata", DEFAULT_CHANNEL_ALIAS, 60.0)
        pypi = PypiResolver(tmp_path / "pypi", attempts=1, builds=builds)
        mixed = MixedResolver(conda, pypi, PypiNames())
        resolution = asyncio.run(mixed.resolve(ResolveRequest(spec, "linux-64")))
    wheel = next(p for p in resolution.packages if p.kind == "pypi")
    assert wheel.filename == "envd_pure-1.0-py3-none-any.whl"
    assert wheel.built is not None and wheel.built.source == f"{links}{sdist.filename}"
    assert builds.built == 1 and builds.prefixes.installed == 1
    assert f"/links/{SETUPTOOLS_WHEEL.name}" in asked
    assert "build-prefixes" in calls.read_text()  # uv ran the prefix's interpreter
