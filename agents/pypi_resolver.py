"""PyPI resolution with `uv pip compile` for a target platform, read back from a pylock.toml."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version as dist_version
from pathlib import Path

from packaging.requirements import Requirement

from envd.description import ResolvedPackage, SolverInfo
from envd.errors import (
    ChannelError,
    EnvdError,
    InternalError,
    SolveTimeoutError,
    UnsatisfiableError,
)
from envd.redaction import tail as log_tail
from envd.requirements_txt import DEFAULT_INDEX_URL
from envd.store.base import Store
from envd.uv import find_links_args, run_group, uv_bin, uv_environment

from .credentials import ChannelCredentials
from .fetch import redact_text, redact_url
from .native_build import NativeBuilds, vcs_refused
from .pylock import Unbuilt, needs_build_error, read_lock_packages
from .pypi_target import PypiTarget, pypi_target
from .resolver import Resolution, ResolveRequest, missing_packages_error
from .source_inputs import fetch_sources

log = logging.getLogger("envd.agent")
DEFAULT_RESOLVE_TIMEOUT = 300.0
DEFAULT_ATTEMPTS = 3  # transient index failures: the whole compile, this many times at most
DEFAULT_RETRY_DELAY = 1.0  # seconds before the second attempt; doubled after each
_UV_HTTP_RETRIES = "1"  # uv's own, per request; ours wrap the whole compile
_LOCK = "pylock.toml"
_NOT_FOUND = re.compile(r"Because (\S+) was not found in the package registry")
_NO_WHEEL = re.compile(r"Because (\S+)==(\S+) has no wheels with a matching platform tag")
_NO_LOGIN = re.compile(
    r"index URL \((\S+)\) could not be queried due to a lack of valid authentication "
    r"credentials \((\d{3}[^)]*)\)"
)
_FETCH_URL = re.compile(r"Failed to fetch: `?(\S+?)`?$", re.MULTILINE)
_TRANSIENT = re.compile(
    r"error sending request|Request failed after|timed out|Connection refused|Connection reset|"
    r"tcp connect error|dns error|HTTP status server error|operation timed out",
    re.IGNORECASE,
)
_MAX_STDERR = 1500
_VCS_PREFIXES = ("git+", "hg+", "svn+", "bzr+")


@dataclass(frozen=True, slots=True)
class _Run:
    returncode: int
    stderr: str
    lock: str | None


class PypiResolver:
    """Resolves PyPI-only specs (the `Resolver` protocol) with `uv pip compile` for the target
    (its platform, manylinux level, macOS target and python version), never for the agent's
    own machine: markers are evaluated for the target.

    uv runs in a temp folder under `cache_dir` with a deadline, an environment without the
    agent's store or channel credentials (`envd.uv`), and its own cache under `cache_dir`
    (kept warm between jobs). Transient index failures are retried `attempts` times in all,
    then reported naming the index.

    Packages without a wheel for the target go to `builds` (`agents/native_build.py`): a
    wheel built before (any agent), one built here on a native agent, or the job handed back
    (`NativeBuildNeeded`); without `builds` they are refused."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        python: str = sys.executable,
        resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
        retry_delay: float = DEFAULT_RETRY_DELAY,
        environ: Mapping[str, str] | None = None,
        store: Store | None = None,
        credentials: ChannelCredentials | None = None,
        builds: NativeBuilds | None = None,
    ) -> None:
        self.cache_dir = cache_dir
        self.python = python
        self.resolve_timeout = resolve_timeout
        self.attempts = max(1, attempts)
        self.retry_delay = retry_delay
        self.environ = dict(os.environ if environ is None else environ)
        self.solver = SolverInfo("uv", dist_version("uv"))
        self.store = store  # where `envd-source://` inputs are read (agents/source_inputs.py)
        self.credentials = credentials  # index logins, given to uv as a netrc of their own
        self.builds = builds

    async def resolve(
        self,
        request: ResolveRequest,
        *,
        python_version: str | None = None,
        stub_index: str | None = None,
        conda: Sequence[ResolvedPackage] = (),
    ) -> Resolution:
        """`python_version` overrides the spec's python (a mixed spec: conda's python);
        `stub_index` is an index uv consults before the spec's, taking every name it has from
        it alone (`--index-strategy first-index`): the packages conda already provides;
        `conda` is a mixed spec's conda solution, whose python builds its wheels."""
        spec, platform = request.spec, request.platform
        python = spec.python if python_version is None else python_version
        target = pypi_target(platform, python, dict(spec.virtual_packages))
        requirements = spec.pypi_requirements_for(platform)
        indexes = list(spec.pypi_indexes) or [DEFAULT_INDEX_URL]
        if not requirements:
            return Resolution((), self.solver)
        _refuse_vcs(requirements, platform)
        log.info("resolving pypi platform=%s target=%s python=%s requirements=%s",
                 platform, target.python_platform, target.python_version, requirements)  # fmt: skip
        deadline = asyncio.timeout(self.resolve_timeout)
        try:
            async with deadline:
                lock = await self._compile_with_retries(
                    target,
                    requirements,
                    indexes,
                    spec.exclude_newer,
                    stub_index,
                    spec.pypi_find_links,
                )
        except TimeoutError as err:
            if not deadline.expired():
                raise
            raise SolveTimeoutError(
                f"PyPI resolve for `{platform}` against {_named(indexes)} took over "
                f"{self.resolve_timeout:g} s",
                hint="check that the index answers; pin more versions, or raise the agent's "
                "`--solve-timeout`",
            ) from err
        # a package's index: the one (or the find-links page) on its URL's host, else the first
        found = read_lock_packages(lock, target, [*indexes, *spec.pypi_find_links])
        if not found.unbuilt:
            return Resolution(found.packages, self.solver)
        if self.builds is None:
            raise needs_build_error(found.unbuilt, platform)
        built = await self.builds.provide(
            found.unbuilt, target, indexes, conda, find_links=spec.pypi_find_links
        )
        return Resolution(tuple(sorted(found.packages + built, key=lambda p: p.name)), self.solver)

    async def _compile_with_retries(
        self,
        target: PypiTarget,
        requirements: list[str],
        indexes: list[str],
        exclude_newer: str | None,
        stub_index: str | None = None,
        find_links: Sequence[str] = (),
    ) -> str:
        delay = self.retry_delay
        for attempt in range(1, self.attempts + 1):
            run = await self._compile(
                target, requirements, indexes, exclude_newer, stub_index, find_links
            )
            if run.returncode == 0 and run.lock is not None:
                return run.lock
            error, transient = _explain(
                run.stderr, target, requirements, indexes, attempt, find_links
            )
            if not transient or attempt == self.attempts:
                raise error
            log.warning("pypi resolve attempt %d/%d failed, retrying in %gs: %s",
                        attempt, self.attempts, delay, error.message)  # fmt: skip
            await asyncio.sleep(delay)
            delay *= 2
        raise InternalError("unreachable: no attempt made")  # attempts >= 1

    async def _compile(
        self,
        target: PypiTarget,
        requirements: list[str],
        indexes: list[str],
        exclude_newer: str | None,
        stub_index: str | None = None,
        find_links: Sequence[str] = (),
    ) -> _Run:
        scratch = self.cache_dir / "pypi-tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="resolve-", dir=scratch))
        try:
            requirements = await asyncio.to_thread(fetch_sources, requirements, work, self.store)
            (work / "requirements.in").write_text("\n".join(requirements) + "\n", "utf-8")
            args = [
                uv_bin(), "pip", "compile", "requirements.in", "--output-file", _LOCK,
                "--format", _LOCK, "--python", self.python,
                "--python-version", target.python_version,
                "--python-platform", target.python_platform,
                "--index-url", indexes[0],
                *(arg for url in indexes[1:] for arg in ("--extra-index-url", url)),
                *find_links_args(find_links),
                "--no-header", "--quiet",
            ]  # fmt: skip
            if exclude_newer:
                args += ["--exclude-newer", exclude_newer]
            extra = {"UV_HTTP_RETRIES": _UV_HTTP_RETRIES}
            if stub_index is not None:  # first: uv takes a name from the first index having it
                args += ["--index", stub_index, "--index-strategy", "first-index"]
                extra["NO_PROXY"] = _no_proxy(self.environ)
            if target.macos_target is not None:
                extra["MACOSX_DEPLOYMENT_TARGET"] = target.macos_target
            logins = self.credentials and self.credentials.write_index_netrc(
                [*indexes, *find_links], work / "netrc"
            )
            if logins:
                extra["NETRC"] = str(logins)
            env = uv_environment(self.environ, home=work, cache_dir=self.cache_dir / "uv",
                                 extra=extra)  # fmt: skip
            # its own process group, killed and reaped when cancelled (a deadline, a revoked
            # lease); `--quiet`: what it prints is its errors
            returncode, stderr = await run_group(args, work, env)
            lock = work / _LOCK
            return _Run(returncode, stderr, lock.read_text("utf-8") if lock.exists() else None)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _refuse_vcs(requirements: Sequence[str], platform: str) -> None:
    """A git (or other VCS) requirement is refused before uv clones it: it would need a build
    envd can't verify (`vcs_refused`)."""
    for text in requirements:
        url = Requirement(text).url or ""
        scheme = url.partition(":")[0].lower()
        if scheme.startswith(_VCS_PREFIXES):
            raise vcs_refused(f"`{redact_text(text)}`", platform, scheme.partition("+")[0])


def _explain(
    stderr: str, target: PypiTarget, requirements: list[str], indexes: list[str], attempt: int,
    find_links: Sequence[str] = (),
) -> tuple[EnvdError, bool]:  # fmt: skip
    """uv's failure as the envd error a user can act on, and whether it may pass on retry."""
    text = redact_text(stderr.strip())
    tail = log_tail(text, _MAX_STDERR)
    refused = _NO_LOGIN.search(text)
    if refused:  # uv says "not found" too; the login is what's missing
        return ChannelError(
            f"failed to fetch from PyPI index `{redact_url(refused.group(1))}` for "
            f"`{target.platform}`: it wants a login the agent does not have ({refused.group(2)})",
            hint="give the agent the login in its netrc file (`$NETRC` or `~/.netrc`: `machine "
            "HOST login USER password SECRET`; over plain http also `--plain-http-host "
            "HOST:PORT`), never in the spec",
        ), False
    missing = list(dict.fromkeys(_NOT_FOUND.findall(text)))
    if missing:
        where = f"{_named(indexes)} for `{target.platform}`"
        return missing_packages_error(missing, where=where, known=()), False
    unbuilt = list(dict.fromkeys(_NO_WHEEL.findall(text)))
    if unbuilt:
        why = f"no wheel for `{target.python_platform}`, python {target.python_version}"
        found = [Unbuilt(name, version, why) for name, version in unbuilt]
        return needs_build_error(found, target.platform, sourceless=True), False
    if _TRANSIENT.search(text):
        index = _failing_index(text, [*indexes, *find_links])
        kind = "find-links location" if index in find_links else "PyPI index"
        return ChannelError(
            f"failed to fetch from {kind} `{redact_url(index)}` for `{target.platform}` "
            f"({attempt} {'attempt' if attempt == 1 else 'attempts'}): {_last_cause(text)}",
            hint="check that the index is up and reachable from the agent, then retry",
        ), True
    if "No solution found" in text:
        return UnsatisfiableError(
            f"failed to resolve PyPI requirements for `{target.platform}` (python "
            f"{target.python_version}): {tail}",
            hint="relax the conflicting requirements above",
        ), False
    return InternalError(
        f"failed to resolve PyPI requirements {', '.join(f'`{r}`' for r in requirements)} for "
        f"`{target.platform}`: uv said: {tail}"
    ), False


def _failing_index(text: str, indexes: list[str]) -> str:
    for url in _FETCH_URL.findall(text):
        for index in indexes:
            if url.startswith(index):
                return index
    return indexes[0] if len(indexes) == 1 else ", ".join(indexes)


def _last_cause(text: str) -> str:
    lines = [line.strip().removeprefix("cause: ") for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no answer"


def _no_proxy(environ: Mapping[str, str]) -> str:
    """NO_PROXY with the loopback added: the stub index is served on 127.0.0.1."""
    current = environ.get("NO_PROXY") or environ.get("no_proxy") or ""
    return ",".join(p for p in [current, "127.0.0.1"] if p)


def _named(indexes: list[str]) -> str:
    noun = "index" if len(indexes) == 1 else "indexes"
    return f"PyPI {noun} " + ", ".join(f"`{redact_url(i)}`" for i in indexes)
