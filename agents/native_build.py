"""Native wheel builds: a PyPI package without a wheel for the target, built by `uv build` on
an agent whose own platform is the target, checked, and cached in the store under `built/`."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from packaging.utils import parse_wheel_filename

from envd.description import BuildOrigin, ResolvedPackage
from envd.errors import (
    ArchiveIntegrityError,
    PreconditionFailed,
    StageTimeoutError,
    StoreError,
    WheelBuildError,
)
from envd.redaction import LOG_TAIL
from envd.redaction import tail as log_tail
from envd.spec import parse_source_url
from envd.store.base import Store
from envd.store.layout import built_key, package_key
from envd.uv import find_links_args, run_group, uv_bin, uv_environment

from .build_prefix import DEFAULT_KEEP, BuildPrefixes
from .built_record import BuiltRecord, python_tag
from .credentials import ChannelCredentials
from .fetch import Fetcher, redact_text, redact_url
from .pylock import SourceArchive, Unbuilt
from .pypi_target import PypiTarget
from .source_inputs import fetch_source
from .wheel_fit import check_wheel_tags, wheel_subdir

log = logging.getLogger("envd.agent")
DEFAULT_BUILD_TIMEOUT = 600.0
_RECORD_ATTEMPTS = 4
_LINUX_ARCH = {"linux-64": "x86_64", "linux-aarch64": "aarch64"}
_MANYLINUX = re.compile(r"^(?:x86_64|aarch64)-manylinux_2_(\d+)$")
_AUDIT_TAG = re.compile(r'following platform tag:\s*"(manylinux_2_(\d+)_\w+)"')


class NativeBuildNeeded(Exception):
    """The job needs wheels built on an agent whose native platform is `platform` and that
    builds for `python` ("3.12"; "" for a mixed spec, whose builds use its own conda python,
    so any native agent builds them), and this agent is not one: it hands the job back
    (`JobRelease.native_builds`, `native_python`). Not an error: the coordinator routes it."""

    def __init__(self, platform: str, builds: Sequence[str], python: str = "") -> None:
        with_python = f" with python {python}" if python else ""
        super().__init__(
            f"needs a native build on a `{platform}` agent{with_python}: {', '.join(builds)}"
        )
        self.platform = platform
        self.builds = tuple(builds)
        self.python = python


def build_python(target: PypiTarget) -> str:
    """The python ("3.12", MAJOR.MINOR) a build for `target` needs: the spec's for a PyPI-only
    spec, conda's for a mixed one (the target carries it)."""
    return ".".join(target.python_version.split(".")[:2])


def audit_plan(show: str, target: PypiTarget, what: str) -> str | None:
    """From `auditwheel show`'s output, the manylinux tag to repair to (the request's, from
    `__glibc`), or None when auditwheel named no manylinux tag the wheel fits. A wheel needing
    a newer glibc than the request's is refused."""
    level = _MANYLINUX.match(target.python_platform)
    if level is None:
        return None
    wanted = int(level[1])
    found = _AUDIT_TAG.search(show)
    if found is None:
        raise WheelBuildError(
            f"failed to build {what} for `{target.platform}`: auditwheel finds it fits no "
            f"manylinux tag: {show.strip()[-LOG_TAIL:]}",
            hint="the build links against libraries outside the manylinux policy",
        )
    needed = int(found[2])
    if needed > wanted:
        raise WheelBuildError(
            f"failed to build {what} for `{target.platform}`: the wheel needs glibc 2.{needed} "
            f"(`{found[1]}`), newer than the request's `__glibc` 2.{wanted}",
            hint=f"resolve with `--virtual-package __glibc=2.{needed}`, or build on an agent "
            "with an older glibc",
        )
    return f"manylinux_2_{wanted}_{_LINUX_ARCH[target.platform]}"


class NativeBuilds:
    """Wheels for the packages a PyPI resolve found without one: reused from the store's
    `built/` records (any agent), else built here when this agent's `native_platform` is the
    target (else `NativeBuildNeeded`). Sources are fetched and verified against the lock's
    sha256; `uv build` runs in a temp folder with a deadline, in its own process group, with
    no store or channel credentials in its environment, using the host interpreter of the
    requested python (`pythons`: "3.11" → path) for a PyPI-only spec, and for a mixed one
    (`conda` given) the environment's own python, its conda solution installed into a build
    prefix (`agents/build_prefix.py`)."""

    def __init__(
        self, store: Store, fetcher: Fetcher, cache_dir: Path, *, agent_id: str,
        native_platform: str, pythons: Mapping[str, str],
        build_timeout: float = DEFAULT_BUILD_TIMEOUT, environ: Mapping[str, str] | None = None,
        credentials: ChannelCredentials | None = None, prefixes_kept: int = DEFAULT_KEEP,
    ) -> None:  # fmt: skip
        self.store = store
        self.fetcher = fetcher
        self.cache_dir = cache_dir
        self.agent_id = agent_id
        self.native_platform = native_platform
        self.pythons = dict(pythons)
        self.build_timeout = build_timeout
        self.environ = dict(os.environ if environ is None else environ)
        self.credentials = credentials  # index logins: a netrc of the build's own, as for resolves
        self.prefixes = BuildPrefixes(store, fetcher, cache_dir, keep=prefixes_kept)
        self.built = 0  # wheels built by this agent (the reuse of a record is not a build)
        self.reused = 0

    async def provide(
        self,
        unbuilt: Sequence[Unbuilt],
        target: PypiTarget,
        indexes: Sequence[str],
        conda: Sequence[ResolvedPackage] = (),
        find_links: Sequence[str] = (),
    ) -> tuple[ResolvedPackage, ...]:
        """The wheels of `unbuilt`; `conda` is a mixed spec's conda solution, whose python
        builds them (the host's of `build_python(target)` builds a PyPI-only spec's);
        `find_links` are the spec's find-links pages, given to `uv build` with its indexes."""
        sources: list[tuple[Unbuilt, SourceArchive]] = []
        for item in unbuilt:
            if item.source is None:
                raise _unverifiable(item, target)
            sources.append((item, item.source))
        found: dict[str, ResolvedPackage] = {}
        for item, source in sources:
            record = await asyncio.to_thread(self._live_record, source.sha256, target)
            if record is not None:
                self.reused += 1
                log.info("reused built wheel %s (built by %s) for %s %s", record.filename,
                         record.agent, item.name, item.version)  # fmt: skip
                found[item.name] = _package(item, source, record, target)
        missing = [(i, s) for i, s in sources if i.name not in found]
        version = "" if conda else build_python(target)  # a mixed spec brings its python
        if missing and (self.native_platform != target.platform
                        or (version and version not in self.pythons)):  # fmt: skip
            # another agent may build it: the coordinator routes the job to one (or says
            # which pythons the connected native agents build for)
            raise NativeBuildNeeded(target.platform, [i.shown() for i, _ in missing], version)
        if missing:
            what = ", ".join(f"`{i.name} {i.version}`" for i, _ in missing)
            async with self._interpreter(conda, target, what) as interpreter:
                for item, source in missing:
                    record = await self._build(
                        item, source, target, interpreter, indexes, find_links
                    )
                    found[item.name] = _package(item, source, record, target)
        return tuple(found[i.name] for i in unbuilt)

    @asynccontextmanager
    async def _interpreter(
        self, conda: Sequence[ResolvedPackage], target: PypiTarget, what: str
    ) -> AsyncIterator[str]:
        """A mixed spec's own python (its build prefix, kept while the builds run), else the
        host interpreter of the requested python."""
        if not conda:
            yield self.pythons[build_python(target)]
            return
        async with self.prefixes.python(conda, target.platform, what) as python:
            yield str(python)

    def _live_record(self, source_sha256: str, target: PypiTarget) -> BuiltRecord | None:
        """The stored record if it is valid and its wheel is in the store, verified."""
        key = built_key(source_sha256, python_tag(target), target.platform)
        data = self.store.get(key)
        record = None if data is None else BuiltRecord.decode(data, source_sha256, target)
        if data is not None and record is None:
            log.warning("ignored invalid built record `%s`", key)
        if record is None:
            return None
        info = self.store.stat(package_key(record.sha256, record.filename))
        if info is None or info.size != record.size:
            log.warning("built record `%s` names a wheel missing from the store", key)
            return None
        return record

    async def _build(
        self, item: Unbuilt, source: SourceArchive, target: PypiTarget, interpreter: str,
        indexes: Sequence[str], find_links: Sequence[str] = (),
    ) -> BuiltRecord:  # fmt: skip
        what = f"`{item.name} {item.version}`"
        scratch = self.cache_dir / "build-tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="build-", dir=scratch))
        try:
            archive = await asyncio.to_thread(self._fetch_source, item, source, work)
            out = work / "out"
            args = [uv_bin(), "build", "--wheel", "--out-dir", str(out), "--python", interpreter,
                    "--index-url", indexes[0],
                    *(a for url in indexes[1:] for a in ("--extra-index-url", url)),
                    *find_links_args(find_links), "--no-config", str(archive)]  # fmt: skip
            extra = {"MACOSX_DEPLOYMENT_TARGET": target.macos_target} if target.macos_target else {}
            logins = self.credentials and self.credentials.write_index_netrc(
                [*indexes, *find_links], work / "netrc"
            )
            if logins:  # build dependencies from a login-protected index
                extra["NETRC"] = str(logins)
            env = uv_environment(self.environ, home=work, cache_dir=self.cache_dir / "uv",
                                 extra=extra)  # fmt: skip
            log.info("building %s for %s with python %s", what, target.platform, interpreter)
            code, output = await self._run(args, work, env, what, target)
            if code != 0:
                raise WheelBuildError(
                    f"failed to build {what} for `{target.platform}`: `uv build` exited with "
                    f"{code}: {_tail(output)}",
                    hint="the build log's tail is above; nothing was stored",
                )
            wheel = _one_wheel(out, what)
            wheel = await self._audit(wheel, target, work, env, what)
            check_wheel_tags(wheel.name, target, what)
            return await asyncio.to_thread(self._publish, wheel, source, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _fetch_source(self, item: Unbuilt, source: SourceArchive, work: Path) -> Path:
        """The source's bytes, verified: a local source from the store (this agent may not be
        the one that resolved it), anything else from its URL."""
        local = parse_source_url(source.url)
        if local is not None:
            return fetch_source(*local, work, self.store)
        dest = work / source.filename
        fetched = self.fetcher.fetch(source.url, dest, max_size=source.size)
        if fetched.sha256 != source.sha256 or (source.size and fetched.size > source.size):
            raise ArchiveIntegrityError(
                f"failed to verify the source of `{item.name} {item.version}` "
                f"(`{redact_url(source.url)}`): sha256 is `{fetched.sha256}`, the index says "
                f"`{source.sha256}`",
                hint="the download was truncated or tampered with; nothing was built",
            )
        return dest

    async def _audit(
        self, wheel: Path, target: PypiTarget, work: Path, env: dict[str, str], what: str
    ) -> Path:
        """On a linux target, a `linux_<arch>` wheel gets `auditwheel show` (its glibc) then
        `auditwheel repair` to the request's manylinux tag; other wheels are left as built."""
        _, _, _, tags = parse_wheel_filename(wheel.name)
        if target.platform not in _LINUX_ARCH or not any(
            t.platform.startswith("linux_") for t in tags
        ):
            return wheel
        tools = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
        audit = [sys.executable, "-m", "auditwheel"]
        code, show = await self._run([*audit, "show", str(wheel)], work, tools, what, target)
        if code != 0:
            raise WheelBuildError(f"failed to build {what}: `auditwheel show` failed: "
                                  f"{_tail(show)}")  # fmt: skip
        plat = audit_plan(show, target, what)
        if plat is None:
            return wheel
        repaired = work / "repaired"
        code, output = await self._run(
            [*audit, "repair", "--plat", plat, "-w", str(repaired), str(wheel)], work, tools,
            what, target,
        )  # fmt: skip
        if code != 0:
            raise WheelBuildError(f"failed to build {what}: `auditwheel repair --plat {plat}` "
                                  f"failed: {_tail(output)}")  # fmt: skip
        return _one_wheel(repaired, what)

    async def _run(
        self, args: list[str], cwd: Path, env: dict[str, str], what: str, target: PypiTarget
    ) -> tuple[int, str]:
        try:
            async with asyncio.timeout(self.build_timeout):
                return await run_group(args, cwd, env)
        except TimeoutError as err:
            raise StageTimeoutError(
                f"timed out building {what} for `{target.platform}`: not done within "
                f"{self.build_timeout:g} s; the build was killed",
                hint="raise the agent's `--build-timeout` for slow builds",
            ) from err

    def _publish(self, wheel: Path, source: SourceArchive, target: PypiTarget) -> BuiltRecord:
        """Upload the wheel (content-addressed), then write its record create-only. Another
        agent's record written first wins (every description then names the same wheel)."""
        with wheel.open("rb") as f:
            sha256 = hashlib.file_digest(f, "sha256").hexdigest()
        record = BuiltRecord(source.sha256, source.url, python_tag(target), target.platform,
                             wheel.name, sha256, wheel.stat().st_size, self.agent_id)  # fmt: skip
        self.store.put_file_if_absent(package_key(sha256, wheel.name), wheel)
        key = built_key(source.sha256, record.python, target.platform)
        for _ in range(_RECORD_ATTEMPTS):
            if self.store.put_if_absent(key, record.encode()):
                break
            held = self._live_record(source.sha256, target)
            if held is not None:
                return held  # another agent's build, recorded first: every description names it
            current = self.store.get_versioned(key)
            if current is None:
                continue  # deleted in between: create it again
            try:  # a corrupt record, or one whose wheel left the store: replace it
                self.store.compare_and_swap(key, current[1], record.encode())
            except PreconditionFailed:
                continue
            log.warning("replaced an invalid or dangling built record `%s`", key)
            break
        else:
            raise StoreError(
                f"failed to record the built wheel at `{key}`: it changed on each of "
                f"{_RECORD_ATTEMPTS} attempts",
                hint="many agents are racing on this build; retry",
            )
        self.built += 1
        log.info("built wheel %s for %s (sha256 %s); recorded at %s", wheel.name,
                 target.platform, sha256, key)  # fmt: skip
        return record


def _one_wheel(folder: Path, what: str) -> Path:
    wheels = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    if len(wheels) != 1:
        raise WheelBuildError(f"failed to build {what}: expected one wheel, found "
                              f"{[w.name for w in wheels]}")  # fmt: skip
    return wheels[0]


def _package(
    item: Unbuilt, source: SourceArchive, record: BuiltRecord, target: PypiTarget
) -> ResolvedPackage:
    return ResolvedPackage(
        kind="pypi", name=item.name, version=item.version, build="", channel=source.index,
        url=source.url, filename=record.filename, sha256=record.sha256, md5=None,
        size=record.size, subdir=wheel_subdir(record.filename, target),
        built=BuildOrigin(source=source.url, sha256=source.sha256, agent=record.agent,
                          platform=record.platform),
    )  # fmt: skip


def vcs_refused(what: str, platform: str, vcs: str = "git") -> WheelBuildError:
    """A version-control source is never built (docs/architecture.md "Native builds")."""
    return WheelBuildError(
        f"failed to build {what} for `{platform}` ({vcs} source): envd does not build {vcs} "
        "sources: a build is recorded and reused by its source's sha256, and a "
        f"{vcs} checkout has none envd could verify",
        hint=(
            "envd-client packs git requirements itself (cloned at their commit and sent as an "
            "sdist named by its sha256): send the request with a current envd-client; or clone "
            "it and name the folder (`name @ ./checkout`)"
            if vcs == "git"
            else "clone it and name the folder (`name @ ./checkout`): envd-client packs it "
            "and the build is from those bytes; or publish an sdist to an index"
        ),
    )


def _unverifiable(item: Unbuilt, target: PypiTarget) -> WheelBuildError:
    what = f"`{item.name} {item.version}` for `{target.platform}` ({item.why})"
    if item.why == "git source":
        return vcs_refused(f"`{item.name} {item.version}`", target.platform)
    return WheelBuildError(
        f"failed to build {what}: envd builds from an sdist or an archive with a sha256",
        hint="pin a release on the index, or an archive URL with `#sha256=…`",
    )


def _tail(text: str) -> str:
    return log_tail(redact_text(text))
