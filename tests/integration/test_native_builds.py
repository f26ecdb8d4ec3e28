"""Native wheel builds: sdist-only packages from a loopback index built with `uv build` on the
agent native to the target, through a real daemon and two real agents (one started with
`--native-platform osx-arm64`: it can't compile for macOS, so its C-extension wheel must be
refused by the tag check; no macOS build is faked)."""

from __future__ import annotations

import hashlib
import re
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from envd.client.api import EnvdClient
from envd.errors import StageTimeoutError, WheelBuildError
from envd.progress import Outcome, ResolveEvent, Stage
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec
from envd.store.local import LocalStore
from harness import Cluster, wait_for
from pypi_index import PypiIndex, Sdist, serve_index

pytestmark = pytest.mark.integration
PLATFORMS = ["linux-64", "osx-arm64"]
SDISTS = [Sdist("envd-pure", "1.0"), Sdist("envd-speed", "1.0", c_extension=True)]


@pytest.fixture
def index(tmp_path: Path) -> Iterator[PypiIndex]:
    with serve_index(tmp_path / "index", wheels=[], sdists=SDISTS) as served:
        yield served


def pypi_spec(index: PypiIndex, *requirements: str) -> Spec:
    raw = RawSpec(
        pypi=[RawDependency(r) for r in requirements], python="3.11", pypi_indexes=[index.url]
    )
    return normalize_spec(raw)


def sdist_sha256(index: PypiIndex, name: str) -> str:
    return hashlib.sha256((index.folder / f"{name}-1.0.tar.gz").read_bytes()).hexdigest()


def two_agents(cluster: Cluster) -> None:
    cluster.start_daemon()
    cluster.start_agent("linux", PLATFORMS)  # native platform detected: linux-64
    cluster.start_agent("mac", PLATFORMS, args=["--native-platform", "osx-arm64"])


def test_each_platform_is_built_by_its_native_agent_and_reused(
    cluster: Cluster, index: PypiIndex
) -> None:
    two_agents(cluster)
    with EnvdClient(cluster.address) as client:
        first = client.resolve(pypi_spec(index, "envd-pure"), PLATFORMS)
        # another request needing the same source: the built wheels are reused, not rebuilt
        second = client.resolve(pypi_spec(index, "envd-pure==1.0"), PLATFORMS)
    for result in (first, second):
        outcomes = {p: e.outcome for p, e in result.events.items()}
        assert outcomes == dict.fromkeys(PLATFORMS, Outcome.RESOLVED), {
            p: e.error for p, e in result.events.items()
        }
    builder = {"linux-64": "linux", "osx-arm64": "mac"}
    for platform, event in first.events.items():
        assert event.description is not None
        (package,) = event.description["packages"]
        assert package["filename"] == "envd_pure-1.0-py3-none-any.whl"
        assert package["built"] == {
            "source": f"{index.url.removesuffix('/simple')}/files/envd_pure-1.0.tar.gz",
            "sha256": sdist_sha256(index, "envd_pure"),
            "agent": builder[platform],
            "platform": platform,
        }
        (wheel,) = package["formats"]
        stored = cluster.root / "store" / "pkgs" / wheel["sha256"] / wheel["filename"]
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == package["sha256"]
        again = second.events[platform].description
        assert again is not None and again["packages"][0]["sha256"] == package["sha256"]
        record = cluster.root / "store" / "built" / package["built"]["sha256"] / "cp311"
        assert (record / f"{platform}.json").is_file()
    logs = cluster.processes[1].log() + cluster.processes[2].log()
    built = re.findall(r"envd\.agent built wheel envd_pure-1\.0-py3-none-any\.whl for (\S+)", logs)
    assert sorted(built) == PLATFORMS  # once per platform, never again
    assert logs.count("envd.agent reused built wheel envd_pure-1.0-py3-none-any.whl") == 2


def test_a_c_extension_is_repaired_for_linux_and_refused_for_macos(
    cluster: Cluster, index: PypiIndex
) -> None:
    two_agents(cluster)
    with EnvdClient(cluster.address) as client:
        result = client.resolve(pypi_spec(index, "envd-speed"), PLATFORMS)
    linux, mac = result.events["linux-64"], result.events["osx-arm64"]
    assert linux.outcome is Outcome.RESOLVED, linux.error
    assert linux.description is not None
    (package,) = linux.description["packages"]
    assert "manylinux_2_17_x86_64" in package["filename"]  # auditwheel repair, to `__glibc`
    assert package["built"]["agent"] == "linux" and package["subdir"] == "linux-64"
    assert mac.outcome is Outcome.FAILED and mac.error is not None
    assert mac.error.message == (
        "failed to build `envd-speed 1.0` for `osx-arm64`: the wheel is tagged "
        "`cp311-cp311-linux_x86_64`, which does not install on the target "
        "(`cp311-cp311-macosx_11_0_arm64`)"
    )
    assert not list((cluster.root / "store" / "built").glob("*/cp311/osx-arm64.json"))


def test_no_native_agent_waits_then_fails_with_the_same_words(
    cluster: Cluster, index: PypiIndex
) -> None:
    cluster.start_daemon(no_agent_timeout=2.0)
    cluster.start_agent("linux", ["osx-arm64"])  # serves osx-arm64, but runs on linux-64
    seen: list[ResolveEvent] = []
    with EnvdClient(cluster.address) as client:
        result = client.resolve(pypi_spec(index, "envd-pure"), ["osx-arm64"], on_event=seen.append)
    waiting = "waiting for an osx-arm64 agent to build envd-pure 1.0 (sdist only)"
    assert (Stage.QUEUED, waiting) in [(e.stage, e.message) for e in seen]
    event = result.events["osx-arm64"]
    assert event.outcome is Outcome.FAILED and event.error is not None
    assert event.error.message == f"{waiting}: none connected within 2 s"
    assert "handed back" in cluster.processes[1].log()


def test_a_build_lands_on_the_native_agent_that_builds_for_its_python(
    cluster: Cluster, index: PypiIndex
) -> None:
    """Two native linux-64 agents; the first builds for no python (`--no-own-build-python`:
    this machine has only python 3.11, so it stands for an agent with other versions). It
    gets the job first, hands it back naming 3.11, and the job waits, saying so, until the
    agent that builds for 3.11 connects and builds it."""
    cluster.start_daemon()
    cluster.start_agent("old", ["linux-64"], args=["--no-own-build-python"])
    seen: list[ResolveEvent] = []
    with ThreadPoolExecutor(1) as pool, EnvdClient(cluster.address) as client:
        pending = pool.submit(client.resolve, pypi_spec(index, "envd-pure"), ["linux-64"],
                              on_event=seen.append)  # fmt: skip
        waiting = (
            "waiting for a linux-64 agent with python 3.11 to build envd-pure 1.0 (sdist only)"
        )
        wait_for(lambda: (Stage.QUEUED, waiting) in [(e.stage, e.message) for e in seen], 60,
                 "the job handed back by the agent without python 3.11")  # fmt: skip
        cluster.start_agent("new", ["linux-64"])  # builds for its own python, 3.11
        result = pending.result(timeout=120)
    event = result.events["linux-64"]
    assert event.outcome is Outcome.RESOLVED, event.error
    assert event.description is not None
    (package,) = event.description["packages"]
    assert package["built"]["agent"] == "new"
    assert "handed back" in cluster.processes[1].log()
    assert "built wheel envd_pure-1.0-py3-none-any.whl" not in cluster.processes[1].log()


def test_no_native_agent_building_the_python_waits_then_fails_naming_versions(
    cluster: Cluster, index: PypiIndex
) -> None:
    cluster.start_daemon(no_agent_timeout=2.0)
    cluster.start_agent("old", ["linux-64"], args=["--no-own-build-python"])
    with EnvdClient(cluster.address) as client:
        result = client.resolve(pypi_spec(index, "envd-pure"), ["linux-64"])
    event = result.events["linux-64"]
    assert event.outcome is Outcome.FAILED and event.error is not None
    assert event.error.message == (
        "waiting for a linux-64 agent to build envd-pure 1.0 (sdist only): no agent connected "
        "within 2 s builds for python 3.11; connected linux-64 agents build for no python"
    )
    assert event.error.hint == (
        "start `envd-agent --coordinator ADDR --build-python /path/to/python3.11` on a "
        "`linux-64` machine"
    )


def direct_build(tmp_path: Path, index: PypiIndex, name: str, timeout: float) -> None:
    """Build `name` (sdist only) for linux-64 on this machine, without daemon or agent."""
    import asyncio

    from envd.agents.fetch import Fetcher
    from envd.agents.native_build import NativeBuilds
    from envd.agents.pylock import read_lock_packages
    from envd.agents.pypi_target import pypi_target

    (sdist,) = [s for s in index.sdists if s.name == name]
    data = (index.folder / sdist.filename).read_bytes()
    url = f"{index.url.removesuffix('/simple')}/files/{sdist.filename}"
    sha = hashlib.sha256(data).hexdigest()
    lock = (
        f'[[packages]]\nname = "{name}"\nversion = "1.0"\nsdist = {{ url = "{url}", '
        f'size = {len(data)}, hashes = {{ sha256 = "{sha}" }} }}\n'
    )
    target = pypi_target("linux-64", "3.11", {})
    found = read_lock_packages(lock, target, [index.url])
    builds = NativeBuilds(
        LocalStore(tmp_path / "store"), Fetcher(attempts=1), tmp_path / "cache",
        agent_id="here", native_platform="linux-64", pythons={"3.11": sys.executable},
        build_timeout=timeout,
    )  # fmt: skip
    asyncio.run(builds.provide(found.unbuilt, target, [index.url]))


def broken(pid_file: Path) -> list[Sdist]:
    hang = (
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)\n"
    )
    return [
        Sdist("envd-broken", "1.0", setup_py="raise SystemExit('boom: this build fails')\n"),
        Sdist("envd-hangs", "1.0", setup_py=hang),
    ]


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"  # killed, not yet reaped by its new parent


def test_a_failing_build_shows_its_log_and_a_hanging_one_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "build.pid"
    with serve_index(tmp_path / "index", wheels=[], sdists=broken(pid_file)) as index:
        with pytest.raises(WheelBuildError) as failed:
            direct_build(tmp_path, index, "envd-broken", 60)
        assert failed.value.message.startswith(
            "failed to build `envd-broken 1.0` for `linux-64`: `uv build` exited with 2: "
        )
        assert "boom: this build fails" in failed.value.message
        started = time.monotonic()
        with pytest.raises(StageTimeoutError) as hung:
            direct_build(tmp_path, index, "envd-hangs", 3)
        assert time.monotonic() - started < 30
        assert hung.value.message == (
            "timed out building `envd-hangs 1.0` for `linux-64`: not done within 3 s; the "
            "build was killed"
        )
    assert not (tmp_path / "store" / "built").exists()
    assert not list((tmp_path / "cache" / "build-tmp").iterdir())  # temp folders removed
    pid = int(pid_file.read_text())  # the build backend's process, under uv's
    deadline = time.monotonic() + 5
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(pid)  # the whole process group was killed


def test_pre_deploy_says_what_a_step_waits_for(
    cluster: Cluster, index: PypiIndex, tmp_path: Path
) -> None:
    """The pre-deploy hook's progress names the native build a step waits for, and its result
    the failure in the same words."""
    from envd.client import pre_deploy

    cluster.start_daemon(no_agent_timeout=2.0)
    cluster.start_agent("linux", ["osx-arm64"])  # serves osx-arm64, but runs on linux-64
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"-i {index.url}\nenvd-pure\n")
    environment = {"requirements": [str(requirements)], "python": "3.11"}
    manifest = {"version": 1, "steps": [
        {"name": "build", "platforms": ["osx-arm64"], "environment": environment},
    ]}  # fmt: skip
    lines: list[str] = []
    result = pre_deploy(manifest, address=cluster.address, on_progress=lines.append)
    waiting = "waiting for an osx-arm64 agent to build envd-pure 1.0 (sdist only)"
    assert f"build: osx-arm64 queued: {waiting}" in lines, lines
    (step,) = result.steps
    assert step.error is None and step.first_error is not None
    assert step.first_error.message == f"{waiting}: none connected within 2 s"
