"""Archive caching on real channels (a local folder and loopback HTTP) into a LocalStore: fetch,
verify, upload, transmute, link — in process, across two racing processes, and end to end."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import http.server
import json
import multiprocessing
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conda_package_streaming.package_streaming import stream_conda_info

from envd.agents.archive_cache import ArchiveCache, CacheProgress, CacheReport
from envd.agents.conda_resolver import CondaResolver
from envd.agents.fetch import Fetcher
from envd.agents.job_runner import Assignment, JobRunner
from envd.agents.resolver import ResolveRequest
from envd.agents.transmute import Transmuter, verify_same_files
from envd.catalog import Catalog
from envd.channels import DEFAULT_CHANNEL_ALIAS
from envd.client.api import EnvdClient
from envd.description import ResolvedPackage, packages_of
from envd.errors import ArchiveIntegrityError, ChannelError
from envd.ids import req_id
from envd.progress import Outcome, ResolveEvent, Stage
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec
from envd.store.layout import link_key, package_key
from envd.store.local import LocalStore
from harness import ROOT, ChannelServer, Cluster, serve_channel

pytestmark = pytest.mark.integration
PLATFORM = "osx-64"
FIXTURES = ROOT / "tests" / "fixtures" / "packages"
BOTH_FORMATS_CHANNEL = FIXTURES / "conda-format-repo"  # real repodata: zlib as .conda and .tar.bz2
CHANNEL_FILES = {
    "osx-64": ["conda-format-repo/osx-64/zlib-1.2.11-h1de35cc_3.conda",
               "conda-format-repo/osx-64/zlib-1.2.11-h1de35cc_3.tar.bz2",
               "conda-index/fly-2.5.2-0.tar.bz2"],
    "noarch": [*(f"rattler-clobber/clobber-nested-{n}-0.1.0-h4616a5c_0.tar.bz2" for n in (1, 2, 3)),
               "conda-package-handling/cph_test_data-0.0.1-0.tar.bz2",
               "conda-test-recipes/dependency-2.0-0.conda",
               "conda-test-recipes/dependent-2.0-0.conda"],
}  # fmt: skip
SEVEN = ["zlib", "clobber-nested-2", "dependent", "cph_test_data"]  # → 7 packages, 4 .tar.bz2
CPH = "cph_test_data-0.0.1-0.tar.bz2"


def index_channel(folder: Path) -> None:
    """Write each subdir's repodata.json from the archives in it (sha256, md5, size from bytes)."""
    for subdir in ("noarch", "osx-64", "linux-64"):
        (folder / subdir).mkdir(parents=True, exist_ok=True)
        repodata: dict[str, Any] = {"info": {"subdir": subdir}, "packages": {},
                                    "packages.conda": {}, "repodata_version": 1}  # fmt: skip
        for archive in sorted((folder / subdir).iterdir()):
            if not archive.name.endswith((".conda", ".tar.bz2")):
                continue
            record = next(
                json.load(tar.extractfile(member))
                for tar, member in stream_conda_info(str(archive))
                if member.name == "info/index.json"
            )
            data = archive.read_bytes()
            record.update(subdir=subdir, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                          md5=hashlib.md5(data).hexdigest())  # fmt: skip
            kind = "packages.conda" if archive.name.endswith(".conda") else "packages"
            repodata[kind][archive.name] = record
        (folder / subdir / "repodata.json").write_text(json.dumps(repodata, indent=1))


@pytest.fixture(scope="session")
def channel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("channel")
    for subdir, files in CHANNEL_FILES.items():
        (folder / subdir).mkdir()
        for relative in files:
            shutil.copy(FIXTURES / relative, folder / subdir)
    index_channel(folder)
    return folder


@pytest.fixture
def own_channel(channel_dir: Path, tmp_path: Path) -> Path:
    """A copy of the channel this test may damage."""
    return Path(shutil.copytree(channel_dir, tmp_path / "own-channel"))


@pytest.fixture
def served(channel_dir: Path) -> Iterator[ChannelServer]:
    with serve_channel(channel_dir) as server:
        yield server


@pytest.fixture(scope="module")
def transmuter() -> Iterator[Transmuter]:
    pool = Transmuter(workers=2)
    yield pool
    pool.close()


class CountingStore(LocalStore):
    """A LocalStore that records the archives `put_file_if_absent` was asked for and created."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.asked: list[str] = []
        self.created: list[str] = []

    def put_file_if_absent(self, key: str, path: Path) -> bool:
        self.asked.append(key)
        created = super().put_file_if_absent(key, path)
        if created:
            self.created.append(key)
        return created


def spec_of(channel: str, deps: list[str]) -> Spec:
    return normalize_spec(RawSpec(conda=[RawDependency(d) for d in deps], channels=[channel]))


def solve(channel: str, deps: list[str], cache_dir: Path) -> tuple[ResolvedPackage, ...]:
    resolver = CondaResolver(cache_dir, DEFAULT_CHANNEL_ALIAS, 60)
    return asyncio.run(resolver.resolve(ResolveRequest(spec_of(channel, deps), PLATFORM))).packages


def cache_all(
    cache: ArchiveCache, packages: tuple[ResolvedPackage, ...]
) -> tuple[CacheReport, list[str]]:
    messages: list[str] = []

    async def progress(step: CacheProgress) -> None:
        messages.append(step.message())

    return asyncio.run(cache.cache(packages, progress)), messages


@contextmanager
def archive_cache(
    store: LocalStore, transmuter: Transmuter, scratch: Path, fetcher: Fetcher | None = None
) -> Iterator[ArchiveCache]:
    cache = ArchiveCache(store, fetcher or Fetcher(), transmuter, scratch_dir=scratch)
    try:
        yield cache
    finally:
        cache.close()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def store_keys(store: LocalStore, prefix: str = "") -> list[str]:
    return store.list(prefix)


def test_real_channel_offering_both_formats_caches_only_the_conda(
    tmp_path: Path, transmuter: Transmuter
) -> None:
    packages = solve(str(BOTH_FORMATS_CHANNEL), ["zlib"], tmp_path / "repodata")
    store = LocalStore(tmp_path / "store")
    with archive_cache(store, transmuter, tmp_path / "scratch") as cache:
        report, messages = cache_all(cache, packages)
    (zlib,) = report.packages
    sha = "857293f389b188ba1fb02401a873fca5098db612ce6646c684efee77ad807f77"
    assert zlib.filename == "zlib-1.2.11-h1de35cc_3.conda" and zlib.sha256 == sha
    assert [(f.format, f.filename, f.sha256, f.size, f.transmuted_from) for f in zlib.formats] == [
        (".conda", "zlib-1.2.11-h1de35cc_3.conda", sha, 91992, None)
    ]
    assert store_keys(store) == [f"pkgs/{sha}/zlib-1.2.11-h1de35cc_3.conda"]
    assert (report.uploaded, report.transmuted, report.reused) == (1, 0, 0)
    assert messages == ["cached 1/1 archives (0 transmuted)"]
    assert list((tmp_path / "scratch").iterdir()) == []  # temp files gone


def test_caches_every_archive_and_transmutes_tarbz2_only_packages(
    tmp_path: Path, served: ChannelServer, transmuter: Transmuter
) -> None:
    packages = solve(served.url, SEVEN, tmp_path / "repodata")
    store = LocalStore(tmp_path / "store")
    with archive_cache(store, transmuter, tmp_path / "scratch") as cache:
        report, messages = cache_all(cache, packages)
    assert (report.uploaded, report.transmuted, report.reused) == (11, 4, 0)
    assert messages[-1] == "cached 7/7 archives (4 transmuted)" and len(messages) == 7
    expected_keys = []
    for package in report.packages:
        original = package.formats[0]
        assert (original.filename, original.sha256, original.transmuted_from) == (
            package.filename, package.sha256, None,
        )  # fmt: skip
        key = package_key(package.sha256, package.filename)
        assert sha256_of(store.root / key) == package.sha256
        assert original.size == package.size == (store.root / key).stat().st_size
        expected_keys.append(key)
        if package.filename.endswith(".conda"):
            assert [f.format for f in package.formats] == [".conda"]
            continue
        stem = package.filename.removesuffix(".tar.bz2")
        conda = package.formats[1]
        assert (conda.format, conda.filename, conda.transmuted_from) == (
            ".conda", f"{stem}.conda", package.sha256,
        )  # fmt: skip
        conda_key = package_key(conda.sha256, conda.filename)
        assert sha256_of(store.root / conda_key) == conda.sha256
        expected_keys += [conda_key, link_key(package.sha256)]
        assert json.loads((store.root / link_key(package.sha256)).read_text()) == {
            "schema": "envd-link-v1", "source_sha256": package.sha256,
            "source_filename": package.filename, "sha256": conda.sha256,
            "filename": conda.filename, "size": conda.size,
        }  # fmt: skip
        # the stored .conda holds exactly the stored .tar.bz2's files (names, modes, sha256)
        assert verify_same_files(store.root / key, store.root / conda_key) > 0
    assert store_keys(store) == sorted(expected_keys)
    assert len([k for k in expected_keys if k.startswith("links/")]) == 4


def test_rerun_for_an_overlapping_set_uploads_only_new_archives(
    tmp_path: Path, served: ChannelServer, transmuter: Transmuter
) -> None:
    store = CountingStore(tmp_path / "store")
    first = solve(served.url, ["cph_test_data", "dependent"], tmp_path / "repodata")
    with archive_cache(store, transmuter, tmp_path / "scratch") as cache:
        one, _ = cache_all(cache, first)
        assert len(store.created) == one.uploaded == 4  # 3 archives + 1 transmuted
        store.created.clear()
        served.requests.clear()
        second = solve(served.url, ["cph_test_data", "dependent", "clobber-nested-2"],
                       tmp_path / "repodata")  # fmt: skip
        two, messages = cache_all(cache, second)
    new = {p.filename for p in second} - {p.filename for p in first}
    assert new == {f"clobber-nested-{n}-0.1.0-h4616a5c_0.tar.bz2" for n in (1, 2, 3)}
    assert sorted(k.rpartition("/")[2] for k in store.created) == sorted(
        [*new, *(n.replace(".tar.bz2", ".conda") for n in new)]
    )
    assert (two.uploaded, two.transmuted, two.reused) == (6, 3, 4)
    fetched = sorted(p.rpartition("/")[2] for p in served.requests if "repodata" not in p)
    assert fetched == sorted(new)  # nothing already stored was downloaded again
    assert messages[-1] == "cached 6/6 archives (3 transmuted)"
    # the .conda of cph_test_data was reused through links/, not rebuilt
    assert {p.name: p.formats for p in one.packages}["cph_test_data"] == {
        p.name: p.formats for p in two.packages
    }["cph_test_data"]


@pytest.mark.parametrize("stored", ["corrupt", "dangling"])
def test_a_corrupt_or_dangling_link_is_replaced(
    tmp_path: Path, served: ChannelServer, transmuter: Transmuter, stored: str
) -> None:
    (package,) = solve(served.url, ["cph_test_data"], tmp_path / "repodata")
    store = LocalStore(tmp_path / "store")
    key = link_key(package.sha256)
    bad = b"{not json" if stored == "corrupt" else json.dumps({
        "schema": "envd-link-v1", "source_sha256": package.sha256,
        "source_filename": package.filename, "sha256": "0" * 64,
        "filename": "cph_test_data-0.0.1-0.conda", "size": 1,
    }).encode()  # fmt: skip
    store.put_if_absent(key, bad)
    with archive_cache(store, transmuter, tmp_path / "scratch") as cache:
        report, _ = cache_all(cache, (package,))
    conda = report.packages[0].formats[1]
    assert report.transmuted == 1 and conda.sha256 != "0" * 64
    assert json.loads(store.get(key) or b"")["sha256"] == conda.sha256
    assert sha256_of(store.root / package_key(conda.sha256, conda.filename)) == conda.sha256


def test_an_original_already_stored_but_never_linked_is_transmuted_from_the_store(
    tmp_path: Path, served: ChannelServer, channel_dir: Path, transmuter: Transmuter
) -> None:
    (package,) = solve(served.url, ["cph_test_data"], tmp_path / "repodata")
    store = LocalStore(tmp_path / "store")
    store.put_file_if_absent(
        package_key(package.sha256, package.filename), channel_dir / "noarch" / CPH
    )
    served.requests.clear()
    with archive_cache(store, transmuter, tmp_path / "scratch") as cache:
        report, _ = cache_all(cache, (package,))
    assert served.requests == []  # nothing fetched from the channel
    assert (report.uploaded, report.transmuted, report.reused) == (1, 1, 1)
    assert store_keys(store, "links/") == [link_key(package.sha256)]


def runner_for(store: LocalStore, transmuter: Transmuter, tmp_path: Path) -> JobRunner:
    class Clock:
        def now(self) -> float:
            return 1_700_000_000.0

    archives = ArchiveCache(store, Fetcher(attempts=2, base_delay=0.0), transmuter,
                            scratch_dir=tmp_path / "scratch", concurrency=4)  # fmt: skip
    return JobRunner(
        resolver=CondaResolver(tmp_path / "repodata", DEFAULT_CHANNEL_ALIAS, 60),
        catalog=Catalog(store), archives=archives, clock=Clock(), agent_id="agent-t", host="h",
    )  # fmt: skip


def run_job(
    runner: JobRunner, spec: Spec, *, no_archives: bool = False
) -> tuple[str, list[tuple[Stage, str]]]:
    events: list[tuple[Stage, str]] = []

    async def progress(stage: Stage, message: str) -> None:
        events.append((stage, message))

    job = Assignment(
        job_id="job-1", lease_id="lease-1", req_id=req_id(spec), platform=PLATFORM,
        canonical_spec=json.dumps(spec.to_canonical()).encode(), no_archives=no_archives,
        requester_user="tester",
    )  # fmt: skip
    try:
        return asyncio.run(runner.run(job, progress)), events
    finally:
        runner.archives.close()


def test_job_caches_archives_before_writing_the_description(
    tmp_path: Path, served: ChannelServer, transmuter: Transmuter
) -> None:
    store = LocalStore(tmp_path / "store")
    spec = spec_of(served.url, SEVEN)
    full_id, events = run_job(runner_for(store, transmuter, tmp_path), spec)
    assert events[1] == (Stage.UPLOADING, "caching 7 archives")
    assert events[-1] == (Stage.UPLOADING, "writing description of 7 packages")
    cached = [message for _, message in events[2:-1]]
    assert [m.split()[1] for m in cached] == [f"{n}/7" for n in range(1, 8)]
    assert cached[-1] == "cached 7/7 archives (4 transmuted)"
    description = Catalog(store).read_description(req_id(spec), PLATFORM, full_id)
    for package in packages_of(description):
        for fmt in package.formats:
            assert (store.root / package_key(fmt.sha256, fmt.filename)).is_file()
    formats = {p["name"]: [f["format"] for f in p["formats"]] for p in description["packages"]}
    assert formats == {
        "clobber-nested-1": [".tar.bz2", ".conda"], "clobber-nested-2": [".tar.bz2", ".conda"],
        "clobber-nested-3": [".tar.bz2", ".conda"], "cph_test_data": [".tar.bz2", ".conda"],
        "dependency": [".conda"], "dependent": [".conda"], "zlib": [".conda"],
    }  # fmt: skip


def test_no_archives_fetches_nothing(
    tmp_path: Path, served: ChannelServer, transmuter: Transmuter
) -> None:
    store = LocalStore(tmp_path / "store")
    spec = spec_of(served.url, SEVEN)
    full_id, events = run_job(runner_for(store, transmuter, tmp_path), spec, no_archives=True)
    assert [p for p in served.requests if "repodata" not in p] == []
    assert store_keys(store) == [f"envs/{req_id(spec)}/{PLATFORM}/{full_id}.json"]
    description = Catalog(store).read_description(req_id(spec), PLATFORM, full_id)
    assert all(p["formats"] == [] for p in description["packages"])
    assert events[1:] == [(Stage.UPLOADING, "writing description of 7 packages")]


@pytest.mark.parametrize("damage", ["tampered", "truncated"])
def test_a_damaged_archive_fails_the_job_and_nothing_of_it_is_stored(
    tmp_path: Path, own_channel: Path, transmuter: Transmuter, damage: str
) -> None:
    archive = own_channel / "noarch" / CPH
    expected = sha256_of(archive)
    data = bytearray(archive.read_bytes())
    if damage == "tampered":
        data[len(data) // 2] ^= 0xFF  # same size, other bytes
    else:
        del data[len(data) // 2 :]
    archive.write_bytes(bytes(data))
    actual = hashlib.sha256(data).hexdigest()
    store = LocalStore(tmp_path / "store")
    with serve_channel(own_channel) as server:
        spec = spec_of(server.url, ["cph_test_data", "dependent"])
        with pytest.raises(ArchiveIntegrityError) as info:
            run_job(runner_for(store, transmuter, tmp_path), spec)
    assert info.value.message == (
        f"failed to verify archive of `cph_test_data` (`{server.url}/noarch/{CPH}`): "
        f"sha256 is `{actual}`, the channel's repodata says `{expected}`"
    )
    assert not [k for k in store_keys(store) if "cph_test_data" in k or expected in k]
    assert store_keys(store, "envs/") == [] and store_keys(store, "links/") == []
    assert list((tmp_path / "scratch").iterdir()) == []


def test_an_archive_missing_from_its_channel_fails_naming_the_url(
    tmp_path: Path, own_channel: Path, transmuter: Transmuter
) -> None:
    (own_channel / "noarch" / "dependency-2.0-0.conda").unlink()
    store = LocalStore(tmp_path / "store")
    with serve_channel(own_channel) as server:
        spec = spec_of(server.url, ["dependent"])
        with pytest.raises(ChannelError) as info:
            run_job(runner_for(store, transmuter, tmp_path), spec)
    assert info.value.message == (
        f"failed to fetch archive `{server.url}/noarch/dependency-2.0-0.conda`: "
        "HTTP 404 File not found"
    )
    assert store_keys(store, "envs/") == []


def test_an_unreachable_archive_host_fails_naming_the_url(
    tmp_path: Path, served: ChannelServer, transmuter: Transmuter
) -> None:
    packages = solve(served.url, ["dependent"], tmp_path / "repodata")
    gone = "http://127.0.0.1:9"  # the channel moved to a host where nothing listens
    moved = tuple(
        replace(p, url=p.url.replace(served.url, gone), channel=p.channel.replace(served.url, gone))
        for p in packages
    )
    store = LocalStore(tmp_path / "store")
    fetcher = Fetcher(attempts=2, base_delay=0.0)
    with archive_cache(store, transmuter, tmp_path / "scratch", fetcher) as cache:
        with pytest.raises(ChannelError) as info:
            cache_all(cache, moved)
    assert info.value.message in {
        f"failed to fetch archive `http://127.0.0.1:9/noarch/{name}` after 2 attempts: "
        "Connection refused"
        for name in ("dependency-2.0-0.conda", "dependent-2.0-0.conda")
    }
    assert store_keys(store) == []


class _BarrierHandler(http.server.SimpleHTTPRequestHandler):
    """Holds each archive download until both racers asked for it (one test at a time)."""

    barriers: ClassVar[dict[str, threading.Barrier]] = {}
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_GET(self) -> None:
        if self.path.endswith((".conda", ".tar.bz2")):
            with self.lock:
                barrier = self.barriers.setdefault(self.path, threading.Barrier(2, timeout=30))
            barrier.wait()
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _race(root: str, packages: tuple[ResolvedPackage, ...], out: str) -> None:
    """One racer (a separate process): cache `packages` into the shared store."""
    store = CountingStore(Path(root) / "store")
    transmuter = Transmuter(workers=1)
    cache = ArchiveCache(store, Fetcher(), transmuter, scratch_dir=Path(out).with_suffix(".tmp"))
    try:
        report = asyncio.run(cache.cache(packages))
    finally:
        cache.close()
        transmuter.close()
    formats = {p.name: [[f.filename, f.sha256, f.transmuted_from] for f in p.formats]
               for p in report.packages}  # fmt: skip
    result = {"asked": store.asked, "created": store.created, "formats": formats}
    Path(out).write_text(json.dumps(result))


def test_two_agents_racing_on_the_same_archives_store_each_once(
    tmp_path: Path, channel_dir: Path
) -> None:
    _BarrierHandler.barriers.clear()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_BarrierHandler, directory=str(channel_dir))
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        packages = solve(url, SEVEN, tmp_path / "repodata")
        context = multiprocessing.get_context("spawn")
        outs = [str(tmp_path / f"racer-{i}.json") for i in (1, 2)]
        racers = [context.Process(target=_race, args=(str(tmp_path), packages, o)) for o in outs]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=60)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert [r.exitcode for r in racers] == [0, 0]
    results = [json.loads(Path(o).read_text()) for o in outs]
    assert sorted(_BarrierHandler.barriers) == sorted(p.url.removeprefix(url) for p in packages)
    originals = {package_key(p.sha256, p.filename) for p in packages}
    asked = [k for r in results for k in r["asked"] if k in originals]
    created = [k for r in results for k in r["created"] if k in originals]
    assert sorted(asked) == sorted([*originals, *originals])  # both racers uploaded each one
    assert sorted(created) == sorted(originals)  # and each was stored exactly once
    assert results[0]["formats"] == results[1]["formats"]  # both name the winning .conda
    store = LocalStore(tmp_path / "store")
    assert len(store_keys(store, "links/")) == 4
    for formats in results[0]["formats"].values():
        for filename, sha, _ in formats:
            assert sha256_of(store.root / package_key(sha, filename)) == sha


def test_end_to_end_resolve_caches_archives_and_lists_formats(
    cluster: Cluster, served: ChannelServer
) -> None:
    cluster.start_daemon()
    cluster.start_agent("agent-mac", [PLATFORM])
    events: list[ResolveEvent] = []
    with EnvdClient(cluster.address) as client:
        result = client.resolve(spec_of(served.url, SEVEN), [PLATFORM], on_event=events.append)
    event = result.events[PLATFORM]
    assert event.outcome is Outcome.RESOLVED, event.error
    assert "cached 7/7 archives (4 transmuted)" in [e.message for e in events]
    assert event.description is not None
    store = cluster.root / "store"
    cached = 0
    for package in event.description["packages"]:
        assert package["formats"], package["name"]
        for fmt in package["formats"]:
            assert sha256_of(store / package_key(fmt["sha256"], fmt["filename"])) == fmt["sha256"]
            cached += 1
    assert cached == 11 and len(list((store / "links").iterdir())) == 4
