"""Conda resolution with py-rattler, on repodata kept warm in one Gateway between jobs."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import rattler
import rattler.exceptions as rx
from rattler import Channel, Client, Gateway, MatchSpec
from rattler.networking import AddHeadersMiddleware, AuthenticationMiddleware, RetryMiddleware

from envd.channels import channel_url
from envd.description import ResolvedPackage, SolverInfo
from envd.errors import (
    ChannelError,
    EnvdError,
    InternalError,
    InvalidSpecError,
    SolveTimeoutError,
    StageTimeoutError,
    UnsatisfiableError,
)
from envd.locks import noarch_name
from envd.platforms import NOARCH, effective_virtual_packages, rattler_virtual_packages

from .fetch import redact_text, redact_url
from .resolver import Resolution, ResolveRequest, missing_packages_error

log = logging.getLogger("envd.agent")
# (host, Authorization) pairs one job's repodata requests may carry
Scope = frozenset[tuple[str, str]]
DEFAULT_REPODATA_TIMEOUT = 60.0
DEFAULT_SOLVE_TIMEOUT = 300.0
# (channel, platform) repodata sets an agent keeps parsed in memory (a few MiB to a few
# hundred MiB each, conda-forge's being the large one)
DEFAULT_WARM_CHANNELS = 16
# rattler's own solve deadline, just past ours: a cancelled Python future does not stop the
# solver's thread, this does (so a job we gave up on burns at most this much CPU more)
_SOLVER_GRACE = 1.0
# py-rattler's exceptions by what a user can do about them; the rest are envd's bugs
_RATTLER_ERRORS: tuple[type[Exception], ...] = tuple(
    c
    for c in vars(rx).values()  # not getattr: that warns for the deprecated aliases
    if isinstance(c, type)
    and issubclass(c, Exception)
    and not issubclass(c, Warning)
    and c.__module__ != "builtins"
)
_CHANNEL_ERRORS = (rx.GatewayError, rx.FetchRepoDataError, rx.InvalidChannelError,
                   rx.InvalidUrlError, rx.AuthenticationStorageError)  # fmt: skip
_SPEC_ERRORS = (rx.InvalidMatchSpecError, rx.InvalidPackageNameError, rx.InvalidVersionError,
                rx.InvalidVersionSpecError, rx.ParseSubdirError)  # fmt: skip
_AGENT_ERRORS = (rx.IoError, rx.CacheDirError)


class CondaResolver:
    """Resolves conda specs (the `Resolver` protocol). The Gateway and its in-memory repodata
    live as long as the agent, so a warm agent skips fetching and parsing repodata.

    Two stages, each under its own deadline: loading the repodata of every channel this agent
    has not loaded yet for the platform (all of rattler's requests and retries;
    `repodata_timeout`), then solving on the warm gateway (`solve_timeout`). A sharded channel
    may still fetch shards a new spec needs during the solve: those count against the solve's
    deadline. When the solve fails, the requested names that no channel has are looked up, so
    the error names all of them at once.

    Credentials: rattler's header hook sees a request's host only (no scheme, no port), so
    each job gets a Gateway whose hook knows just the hosts of its own channels, each with the
    `Authorization` that `authorization(channel URL)` gives for that channel's scheme and port
    (see `_scope`). Gateways (and their warm repodata) are kept per such scope; jobs without
    private channels share the one without credentials."""

    def __init__(
        self,
        cache_dir: Path,
        channel_alias: str,
        solve_timeout: float = DEFAULT_SOLVE_TIMEOUT,
        authorization: Callable[[str], str | None] | None = None,
        *,
        repodata_timeout: float = DEFAULT_REPODATA_TIMEOUT,
        warm_channels: int = DEFAULT_WARM_CHANNELS,
    ) -> None:
        self.cache_dir = cache_dir
        self.authorization = authorization
        self._gateways: dict[Scope, Gateway] = {}
        self.channel_alias = channel_alias
        self.solve_timeout = solve_timeout
        self.repodata_timeout = repodata_timeout
        self.solver = SolverInfo("py-rattler (resolvo)", dist_version("py-rattler"))
        # (scope, channel URL, platform) whose repodata that scope's gateway holds, least
        # recently used first: a warm agent goes straight to the solve (the prefetch would
        # only convert records to Python again). Past `warm_channels` the oldest is dropped
        # from memory, so an agent's memory is bounded by that, not by how many channels
        # requests name.
        self._loaded: OrderedDict[tuple[Scope, str, str], None] = OrderedDict()
        self.warm_channels = warm_channels

    def channels(self, request: ResolveRequest) -> list[str]:
        return [channel_url(c, self.channel_alias) for c in request.spec.channels]

    async def resolve(self, request: ResolveRequest) -> Resolution:
        urls = self.channels(request)
        if not urls:
            raise UnsatisfiableError(
                "the spec names no channel", hint="add `channels:` to the file or pass `-c NAME`"
            )
        platform = request.platform
        specs = request.spec.conda_specs_for(platform)
        subdirs: list[Any] = [platform, NOARCH]
        log.info("solving platform=%s specs=%s channels=%s", platform, specs, urls)
        names = _requested_names(specs)
        scope = self._scope(urls)
        gateway = self._gateway(scope)
        cold = [url for url in urls if (scope, url, platform) not in self._loaded]
        if cold:  # its own stage: a channel that stalls fails here, named, not in the solve
            # the requested names only: a subdir's repodata file is downloaded whole either
            # way, and building every record as a Python object only for the solve to load
            # them again cost 0.1-0.25 s at conda-forge scale (bench/README.md)
            until = asyncio.get_running_loop().time() + self.repodata_timeout
            await self._load(gateway, cold, subdirs, specs, until, recursive=False)
        self._keep_warm(scope, urls, platform)
        virtual = rattler_virtual_packages(
            effective_virtual_packages(platform, dict(request.spec.virtual_packages))
        )
        deadline = asyncio.timeout(self.solve_timeout)
        try:
            async with deadline:
                records = await rattler.solve(
                    [Channel(u) for u in urls], specs, gateway=gateway, platforms=subdirs,
                    virtual_packages=virtual, exclude_newer=_moment(request.spec.exclude_newer),
                    timeout=timedelta(seconds=self.solve_timeout + _SOLVER_GRACE),
                )  # fmt: skip
        except TimeoutError as err:
            if not deadline.expired():
                raise
            raise SolveTimeoutError(
                f"solve for `{platform}` took over {self.solve_timeout:g} s",
                hint="pin more versions, or raise the agent's `--solve-timeout`",
            ) from err
        except rx.SolverError as err:
            raise await self._unsolvable(gateway, err, urls, subdirs, names) from err
        except _RATTLER_ERRORS as err:
            raise _explain(err, f"failed to solve the spec for `{platform}`") from err
        packages = tuple(sorted((_package(r) for r in records), key=lambda p: p.name))
        return Resolution(packages, self.solver)

    def _scope(self, urls: list[str]) -> Scope:
        """Per host of this job's channels, the `Authorization` its requests carry: a host
        gets one only when every channel on it gets the same for its own scheme and port, so
        a spec naming `http://HOST` or `https://HOST:OTHER` beside `https://HOST` can't lure
        the token of `https://HOST` there."""
        if self.authorization is None:
            return frozenset()
        found: dict[str, set[str | None]] = {}
        for url in urls:
            host = (urlsplit(url).hostname or "").lower()
            found.setdefault(host, set()).add(self.authorization(url))
        scope = {}
        for host, values in found.items():
            value = values.pop() if len(values) == 1 else None
            if value is not None:
                scope[host] = value
            elif values:
                log.warning("channels on `%s` differ in scheme or port: none of their requests "
                            "carries credentials in this job", host)  # fmt: skip
        return frozenset(scope.items())

    def _gateway(self, scope: Scope) -> Gateway:
        gateway = self._gateways.get(scope)
        if gateway is None:
            headers = dict(scope)
            hook = (lambda host, path: headers.get(host.lower())) if headers else None
            gateway = Gateway(cache_dir=self.cache_dir, client=_client(hook))
            self._gateways[scope] = gateway
        return gateway

    def _keep_warm(self, scope: Scope, urls: list[str], platform: str) -> None:
        """Mark these channels most recently used; forget the oldest past `warm_channels`
        (a solve still using them keeps its records; a later one fetches them again)."""
        for url in urls:
            self._loaded[(scope, url, platform)] = None
            self._loaded.move_to_end((scope, url, platform))
        while len(self._loaded) > max(self.warm_channels, len(urls)):
            (old_scope, url, old_platform), _ = self._loaded.popitem(last=False)
            still = any(s == old_scope and u == url for s, u, _ in self._loaded)
            subdirs: list[Any] | None = [old_platform] if still else None
            self._gateway(old_scope).clear_repodata_cache(Channel(url), subdirs)

    async def _load(
        self,
        gateway: Gateway,
        urls: list[str],
        subdirs: list[Any],
        specs: list[str],
        until: float,
        *,
        recursive: bool,
    ) -> list[list[rattler.RepoDataRecord]]:
        """Fetch (or find warm) the repodata of `specs` (and their dependencies, if
        `recursive`) by loop time `until`, one task per channel so that a stall names its
        channel; returns the records found."""
        tasks = {
            url: asyncio.ensure_future(
                gateway.query([Channel(url)], subdirs, specs, recursive=recursive)
            )
            for url in urls
        }
        left = until - asyncio.get_running_loop().time()
        try:
            done, pending = await asyncio.wait(
                tasks.values(), timeout=max(0.0, left), return_when=asyncio.FIRST_EXCEPTION
            )
        finally:
            for task in tasks.values():
                task.cancel()  # a no-op once done; drops rattler's requests otherwise
        failures = [(url, t.exception()) for url, t in tasks.items() if t in done]
        for url, failure in failures:
            if failure is not None:
                platform = subdirs[0]
                action = f"failed to fetch repodata of `{redact_url(url)}` for `{platform}`"
                raise _explain(failure, action) from failure
        if pending:
            stalled = ", ".join(f"`{redact_url(u)}`" for u, t in tasks.items() if t in pending)
            raise StageTimeoutError(
                f"timed out fetching repodata from {stalled} for `{subdirs[0]}` (and `noarch`):"
                f" not done within {self.repodata_timeout:g} s",
                hint="check that the channel is up and answers; if it is only slow, raise the "
                "agent's `--repodata-timeout`",
            )
        return [records for task in tasks.values() for records in task.result()]

    async def _unsolvable(
        self, gateway: Gateway, err: Exception, urls: list[str], subdirs: list[Any],
        names: list[str],
    ) -> EnvdError:  # fmt: skip
        """Every requested name no channel has (`PackageNotFoundError`, with suggestions), or
        else the solver's own account of the conflict (`UnsatisfiableError`)."""
        platform = subdirs[0]
        until = asyncio.get_running_loop().time() + self.repodata_timeout
        found = await self._load(gateway, urls, subdirs, names, until, recursive=False)
        present = {record.name.normalized for records in found for record in records}
        missing = [name for name in names if name not in present]
        if missing:
            known = await self._known_names(gateway, urls, subdirs, until)
            where = _where(urls, platform)
            return missing_packages_error(missing, where=where, known=known, requested=names)
        return UnsatisfiableError(
            f"failed to solve the spec for `{platform}`: {redact_text(str(err).strip())}",
            hint="relax the conflicting constraints above",
        )

    async def _known_names(
        self, gateway: Gateway, urls: list[str], subdirs: list[Any], until: float
    ) -> set[str]:
        """Every package name of the channels, for suggestions; empty if they cannot be read
        by loop time `until` (the error that needs them is worth more than suggestions)."""
        left = until - asyncio.get_running_loop().time()
        try:
            names = await asyncio.wait_for(
                gateway.names([Channel(u) for u in urls], subdirs), max(0.0, left)
            )
        except (TimeoutError, *_CHANNEL_ERRORS) as err:
            log.warning("no package names for suggestions: %s", redact_text(str(err)))
            return set()
        return {name.normalized for name in names}


def _moment(exclude_newer: str | None) -> datetime | None:
    """The spec's cutoff (normalized RFC 3339, `Z`) as the solver's `exclude_newer`."""
    return None if exclude_newer is None else datetime.fromisoformat(exclude_newer)


def _requested_names(specs: Sequence[str]) -> list[str]:
    """The package names the specs ask for, in order; virtual packages (`__glibc`) are not
    looked for in channels."""
    names: list[str] = []
    for text in specs:
        try:
            matcher = MatchSpec(text).name
        except _RATTLER_ERRORS as err:
            raise _explain(err, f"failed to read the match spec `{text}`") from err
        name = matcher.as_package_name() if matcher is not None else None  # None: a pattern
        normalized = name.normalized if name is not None else ""
        if normalized and not normalized.startswith("__") and normalized not in names:
            names.append(normalized)
    return names


def _explain(err: BaseException, action: str) -> EnvdError:
    """A py-rattler failure as the envd error a user can act on, by its class."""
    text = redact_text(str(err).strip())
    if isinstance(err, _CHANNEL_ERRORS):
        return ChannelError(
            f"{action}: {text}",
            hint="check that each channel URL or folder exists and is reachable",
        )
    if isinstance(err, _SPEC_ERRORS):
        return InvalidSpecError(f"{action}: {text}", hint="fix the match spec in the request")
    if isinstance(err, _AGENT_ERRORS):
        return InternalError(f"{action}: {text}", hint="check the agent's `--cache-dir` disk")
    return InternalError(f"{action}: {type(err).__name__}: {text}")


def _where(urls: list[str], platform: str) -> str:
    return (
        f"channels {', '.join(f'`{redact_url(u)}`' for u in urls)} for `{platform}` (and `noarch`)"
    )


def _client(headers: Callable[[str, str], str | None] | None) -> Client:
    """rattler's default middleware (auth storage, retries), plus the job's own channel
    credentials (`CondaResolver._scope`) as an Authorization header by host. No request
    timeout here: each stage's deadline cancels the requests (retries included)."""
    middlewares: list[Any] = [AuthenticationMiddleware(), RetryMiddleware()]
    if headers is not None:
        value_for = headers

        def add(host: str, path: str) -> dict[str, str] | None:
            value = value_for(host, path)
            return {"Authorization": value} if value else None

        middlewares.insert(0, AddHeadersMiddleware(add))
    return Client(middlewares)


def _package(record: rattler.RepoDataRecord) -> ResolvedPackage:
    return ResolvedPackage(
        kind="conda",
        name=record.name.normalized,
        version=str(record.version),
        build=str(record.build),
        channel=str(record.channel or ""),
        url=str(record.url),
        filename=record.file_name,
        sha256=record.sha256.hex() if record.sha256 else "",
        md5=record.md5.hex() if record.md5 else None,
        size=record.size,
        subdir=record.subdir,
        depends=tuple(record.depends),
        constrains=tuple(record.constrains),
        build_number=int(record.build_number),
        noarch=noarch_name(record.noarch),
    )
