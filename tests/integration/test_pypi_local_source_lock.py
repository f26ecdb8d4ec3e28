"""The agent's side of a local source: the sdist the client packed (real `uv build`) is read
from the store, verified, and handed to uv as a file; the lock names exactly those bytes. The
wheel is built on an agent native to the target, which reads the source from the store itself
(here not the agent that resolved first); a packed wheel is used as it is when it fits."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from envd.agents.pypi_resolver import PypiResolver
from envd.agents.pypi_target import pypi_target
from envd.agents.resolver import ResolveRequest
from envd.client.api import EnvdClient
from envd.client.local_sources import PackedSpec, pack_local_sources, upload_sources
from envd.errors import ArchiveIntegrityError, WheelBuildError
from envd.progress import Outcome, ResolveEvent
from envd.requirements_txt import requirement_text
from envd.spec import RawDependency, RawSpec, normalize_spec, source_url
from envd.store.local import LocalStore
from harness import Cluster
from pypi_index import LINUX_TAG, PypiIndex, Wheel, serve_index, write_wheel

pytestmark = pytest.mark.integration
PYPROJECT = (
    '[project]\nname = "mypkg"\nversion = "0.1"\ndescription = "x"\nrequires-python = ">=3.9"\n'
    '[build-system]\nrequires = ["flit_core>=3.4,<5"]\nbuild-backend = "flit_core.buildapi"\n'
)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[PypiIndex]:
    with serve_index(tmp_path / "index", wheels=[], build_backends=True) as served:
        yield served


def packed(tmp_path: Path, index: PypiIndex, *paths: str) -> PackedSpec:
    """The spec naming `paths` (relative to `tmp_path`), packed as envd-client packs it."""
    project = tmp_path / "mypkg"
    (project / "src" / "mypkg").mkdir(parents=True, exist_ok=True)
    (project / "src" / "mypkg" / "__init__.py").write_text("X = 1\n")
    (project / "pyproject.toml").write_text(PYPROJECT)
    deps = [RawDependency(requirement_text(p, "test", tmp_path)) for p in paths]
    raw = RawSpec(pypi=deps, python="3.11", pypi_indexes=[index.url])
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    environ = {"PATH": "/usr/bin:/bin", "UV_DEFAULT_INDEX": index.url}
    return pack_local_sources(normalize_spec(raw), scratch, environ=environ)


def test_the_lock_names_the_stored_source_and_a_corrupt_copy_is_refused(
    tmp_path: Path, index: PypiIndex
) -> None:
    spec = packed(tmp_path, index, "./mypkg")
    store = LocalStore(tmp_path / "store")
    upload_sources(spec.sources, store)
    (source,) = spec.sources
    resolver = PypiResolver(tmp_path / "cache", store=store, attempts=1)
    target = pypi_target("linux-64", spec.spec.python, {})
    requirements = spec.spec.pypi_requirements_for("linux-64")
    lock = asyncio.run(resolver._compile_with_retries(target, requirements, [index.url], None))
    (entry,) = tomllib.loads(lock)["packages"]
    assert (entry["name"], entry["version"]) == ("mypkg", "0.1")
    assert entry["archive"]["hashes"]["sha256"] == source.sha256
    assert entry["archive"]["path"].endswith(f"/sources/{source.sha256}/mypkg-0.1.tar.gz")
    stored = store.root / source.key
    stored.chmod(0o644)
    stored.write_bytes(b"not the packed sdist")
    with pytest.raises(ArchiveIntegrityError, match=r"failed to verify local source `mypkg-0\.1"):
        asyncio.run(resolver.resolve(ResolveRequest(spec.spec, "linux-64")))


def test_a_local_wheel_is_used_as_it_is_or_refused_with_both_tags(
    tmp_path: Path, index: PypiIndex
) -> None:
    wheel = write_wheel(Wheel("envd-local", "1.0", LINUX_TAG), tmp_path)
    spec = packed(tmp_path, index, f"./{wheel.name}")
    store = LocalStore(tmp_path / "store")
    upload_sources(spec.sources, store)
    (source,) = spec.sources
    resolver = PypiResolver(tmp_path / "cache", store=store, attempts=1)  # no builds at all
    linux = asyncio.run(resolver.resolve(ResolveRequest(spec.spec, "linux-64")))
    (package,) = linux.packages
    assert (package.filename, package.sha256, package.built) == (wheel.name, source.sha256, None)
    assert package.url == source_url(source.sha256, wheel.name)
    with pytest.raises(WheelBuildError) as info:
        asyncio.run(resolver.resolve(ResolveRequest(spec.spec, "osx-arm64")))
    assert info.value.message == (
        f"failed to use the wheel `{wheel.name}` of `envd-local 1.0` for `osx-arm64`: the wheel "
        "is tagged `cp311-cp311-manylinux2014_x86_64.cp311-cp311-manylinux_2_17_x86_64`, which "
        "does not install on the target (`cp311-cp311-macosx_11_0_arm64`)"
    )


def test_the_native_agent_reads_the_local_source_from_the_store_and_builds_it(
    cluster: Cluster, tmp_path: Path, index: PypiIndex
) -> None:
    wheel = write_wheel(Wheel("envd-local", "1.0"), tmp_path)
    spec = packed(tmp_path, index, "./mypkg", f"./{wheel.name}")
    upload_sources(spec.sources, LocalStore(cluster.root / "store"))
    sdist = next(s for s in spec.sources if s.filename == "mypkg-0.1.tar.gz")
    cluster.start_daemon()
    # serves linux-64 but runs on osx-arm64: it resolves, then hands the build back
    cluster.start_agent("mac", ["linux-64"], args=["--native-platform", "osx-arm64"])
    seen: list[ResolveEvent] = []
    waiting = "waiting for a linux-64 agent to build mypkg 0.1 (local source)"
    with EnvdClient(cluster.address) as client, concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.resolve, spec.spec, ["linux-64"], on_event=seen.append)
        deadline = time.monotonic() + 60
        while waiting not in [e.message for e in seen] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert waiting in [e.message for e in seen], [e.message for e in seen]
        cluster.start_agent("linux", ["linux-64"])  # its own cache: the store is all it shares
        event = pending.result(timeout=120).events["linux-64"]
    assert event.outcome is Outcome.RESOLVED, event.error
    assert event.description is not None
    packages = {p["name"]: p for p in event.description["packages"]}
    assert packages["mypkg"]["filename"] == "mypkg-0.1-py3-none-any.whl"
    assert packages["mypkg"]["built"] == {
        "source": source_url(sdist.sha256, sdist.filename),
        "sha256": sdist.sha256,
        "agent": "linux",
        "platform": "linux-64",
    }
    local = packages["envd-local"]
    assert (local["filename"], local.get("built")) == (wheel.name, None)
    assert "handed back" in cluster.processes[1].log()
