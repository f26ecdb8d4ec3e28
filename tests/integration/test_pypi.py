"""PyPI-only environments: uv against a generated loopback index, through real processes."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from envd.agents.pypi_resolver import PypiResolver
from envd.agents.resolver import ResolveRequest
from envd.client.api import EnvdClient
from envd.errors import PackageNotFoundError, PypiNotAvailableError
from envd.progress import Outcome
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec
from envd.spec_input import load_spec
from harness import Cluster
from pypi_index import LINUX_TAG, MACOS_TAG, PypiIndex, serve_index

pytestmark = pytest.mark.integration
PLATFORMS = ["linux-64", "osx-arm64"]


@pytest.fixture
def index(tmp_path: Path) -> Iterator[PypiIndex]:
    with serve_index(tmp_path / "index") as served:
        yield served


def pypi_spec(index: PypiIndex, *requirements: str, exclude_newer: str | None = None) -> Spec:
    raw = RawSpec(
        pypi=[RawDependency(r) for r in requirements],
        python="3.11",
        pypi_indexes=[index.url],
        exclude_newer=exclude_newer,
    )
    return normalize_spec(raw)


def resolve(tmp_path: Path, spec: Spec, platform: str) -> dict[str, str]:
    resolver = PypiResolver(tmp_path / "cache", attempts=2, retry_delay=0.1)
    resolution = asyncio.run(resolver.resolve(ResolveRequest(spec, platform)))
    assert all(p.kind == "pypi" and p.channel == spec.pypi_indexes[0] for p in resolution.packages)
    return {p.name: p.filename for p in resolution.packages}


def test_markers_and_platform_wheels_follow_the_target(tmp_path: Path, index: PypiIndex) -> None:
    spec = pypi_spec(index, "envd-app")
    assert resolve(tmp_path, spec, "linux-64") == {
        "envd-app": "envd_app-2.0-py3-none-any.whl",
        "envd-linux-only": "envd_linux_only-1.0-py3-none-any.whl",
        "envd-native": f"envd_native-1.0-{LINUX_TAG}.whl",
    }
    assert resolve(tmp_path, spec, "osx-arm64") == {
        "envd-app": "envd_app-2.0-py3-none-any.whl",
        "envd-mac-only": "envd_mac_only-1.0-py3-none-any.whl",
        "envd-native": f"envd_native-1.0-{MACOS_TAG}.whl",
    }


def test_exclude_newer_picks_the_older_version(tmp_path: Path, index: PypiIndex) -> None:
    spec = pypi_spec(index, "envd-app", exclude_newer="2025-01-01")
    assert spec.exclude_newer == "2025-01-01T00:00:00Z"
    assert resolve(tmp_path, spec, "linux-64") == {"envd-app": "envd_app-1.0-py3-none-any.whl"}


def test_bad_input_is_named(tmp_path: Path, index: PypiIndex) -> None:
    with pytest.raises(PackageNotFoundError) as missing:
        resolve(tmp_path, pypi_spec(index, "envd-nope"), "linux-64")
    assert missing.value.message == (
        f"package `envd-nope` not found in PyPI index `{index.url}` for `linux-64`"
    )
    with pytest.raises(PypiNotAvailableError) as unbuilt:
        resolve(tmp_path, pypi_spec(index, "envd-linux-wheel-only"), "osx-arm64")
    assert unbuilt.value.message == (
        "failed to resolve PyPI requirements for `osx-arm64`: package `envd-linux-wheel-only "
        "1.0` (no wheel for `aarch64-apple-darwin`, python 3.11) needs a native build on an "
        "agent of `osx-arm64`: the index has no source to build it from"
    )


def test_an_index_that_is_down_is_retried_then_named(tmp_path: Path) -> None:
    from envd.errors import ChannelError

    down = "http://127.0.0.1:9/simple"
    spec = normalize_spec(
        RawSpec(pypi=[RawDependency("envd-app")], python="3.11", pypi_indexes=[down])
    )
    resolver = PypiResolver(tmp_path / "cache", attempts=2, retry_delay=0.1)
    with pytest.raises(ChannelError) as failed:
        asyncio.run(resolver.resolve(ResolveRequest(spec, "linux-64")))
    assert failed.value.message.startswith(
        f"failed to fetch from PyPI index `{down}` for `linux-64` (2 attempts): "
    )


def test_cluster_resolves_requirements_caches_wheels_and_hits(
    cluster: Cluster, index: PypiIndex, tmp_path: Path
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"--index-url {index.url}\nenvd-app>=1\n")
    spec = load_spec(requirement_files=[requirements], python="3.11").spec
    cluster.start_daemon()
    cluster.start_agent("agent", PLATFORMS)
    with EnvdClient(cluster.address) as client:
        first = client.resolve(spec, PLATFORMS)
        again = client.resolve(spec, PLATFORMS)
    assert {p: e.outcome for p, e in first.events.items()} == dict.fromkeys(
        PLATFORMS, Outcome.RESOLVED
    ), {p: e.error for p, e in first.events.items()}
    assert {p: e.outcome for p, e in again.events.items()} == dict.fromkeys(
        PLATFORMS, Outcome.CACHE_HIT
    )
    native = {"linux-64": LINUX_TAG, "osx-arm64": MACOS_TAG}
    for platform, event in first.events.items():
        description = event.description
        assert description is not None and description["env_type"] == "pypi-only"
        assert description["solver"]["name"] == "uv"
        by_name = {p["name"]: p for p in description["packages"]}
        only = "envd-linux-only" if platform == "linux-64" else "envd-mac-only"
        assert sorted(by_name) == ["envd-app", only, "envd-native"]
        wheel = by_name["envd-native"]
        assert wheel["filename"] == f"envd_native-1.0-{native[platform]}.whl"
        assert wheel["index"] == index.url and wheel["subdir"] == platform
        (cached,) = wheel["formats"]
        stored = cluster.root / "store" / "pkgs" / cached["sha256"] / cached["filename"]
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == wheel["sha256"]


def pypi_reachable(attempts: int = 3) -> str | None:
    """None if PyPI answers, else why not (after `attempts` bounded tries)."""
    import time
    import urllib.request

    reason = ""
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen("https://pypi.org/simple/requests/", timeout=10):
                return None
        except OSError as err:
            reason = str(err)
            time.sleep(0.5 * (attempt + 1))
    return reason


def test_requests_and_numpy_from_the_real_pypi_for_two_platforms(tmp_path: Path) -> None:
    unreachable = pypi_reachable()
    if unreachable is not None:
        pytest.skip(f"PyPI is not reachable from here: {unreachable}")
    # numpy's newest wheels are manylinux_2_28: the request's glibc admits them (with envd's
    # default __glibc 2.17 they are sdist only here, a native build)
    spec = normalize_spec(RawSpec(
        pypi=[RawDependency("requests>=2.31"), RawDependency("numpy>=1.26")], python="3.11",
        virtual_packages={"__glibc": "2.28"},
    ))  # fmt: skip
    resolver = PypiResolver(tmp_path / "cache", attempts=3, retry_delay=1.0, resolve_timeout=120)
    for platform in PLATFORMS:
        resolution = asyncio.run(resolver.resolve(ResolveRequest(spec, platform)))
        names = {p.name: p for p in resolution.packages}
        assert {"requests", "urllib3", "idna", "certifi", "charset-normalizer"} <= set(names)
        assert names["requests"].filename.endswith("-py3-none-any.whl")
        assert all(p.channel == "https://pypi.org/simple" for p in resolution.packages)
        charset = names["charset-normalizer"].filename
        assert "linux" not in charset if platform == "osx-arm64" else "macosx" not in charset
        numpy = names["numpy"].filename  # compiled: a wheel for the target, never the host's
        wanted = ("macosx", "arm64") if platform == "osx-arm64" else ("manylinux", "x86_64")
        assert all(part in numpy for part in wanted), numpy
        assert numpy.startswith("numpy-") and "-cp311-cp311-" in numpy, numpy


def test_find_links_page_provides_a_package_the_index_lacks_through_the_cluster(
    cluster: Cluster, index: PypiIndex, tmp_path: Path
) -> None:
    from pypi_index import Wheel, serve_find_links

    flat = Wheel("envd-flat", "1.0", requires=("envd-app<2",))
    with serve_find_links(tmp_path / "links", [flat]) as (links, asked):
        requirements = tmp_path / "requirements.txt"
        requirements.write_text(f"--index-url {index.url}\n-f {links}\nenvd-flat\n")
        spec = load_spec(requirement_files=[requirements], python="3.11").spec
        assert spec.pypi_find_links == (links,)
        cluster.start_daemon()
        cluster.start_agent("agent", ["linux-64"])
        with EnvdClient(cluster.address) as client:
            result = client.resolve(spec, ["linux-64"])
        event = result.events["linux-64"]
        assert event.outcome is Outcome.RESOLVED, event.error
        assert "/links/" in asked and "/links/envd_flat-1.0-py3-none-any.whl" in asked
    description = event.description
    assert description is not None and description["spec"]["pypi_find_links"] == [links]
    by_name = {p["name"]: p for p in description["packages"]}
    assert sorted(by_name) == ["envd-app", "envd-flat"]  # its dependency from the index
    assert (by_name["envd-flat"]["index"], by_name["envd-app"]["index"]) == (links, index.url)
    assert by_name["envd-app"]["filename"] == "envd_app-1.0-py3-none-any.whl"
    (cached,) = by_name["envd-flat"]["formats"]
    stored = cluster.root / "store" / "pkgs" / cached["sha256"] / cached["filename"]
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == by_name["envd-flat"]["sha256"]
