"""Conda resolution with py-rattler, on repodata kept warm in one Gateway between jobs."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import rattler
from rattler import Channel, Client, Gateway
from rattler.networking import AddHeadersMiddleware, AuthenticationMiddleware, RetryMiddleware

from envd.channels import channel_url
from envd.description import ResolvedPackage, SolverInfo
from envd.errors import (
    ChannelError,
    PackageNotFoundError,
    SolveTimeoutError,
    UnsatisfiableError,
)
from envd.platforms import NOARCH, effective_virtual_packages, rattler_virtual_packages
from envd.spec import Spec

log = logging.getLogger("envd.agent")
_NO_CANDIDATES = re.compile(r"No candidates were found for (?P<spec>[^\n]+?)\.?$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Resolution:
    packages: tuple[ResolvedPackage, ...]
    solver: SolverInfo


class CondaResolver:
    """Solves a Spec for one platform. The Gateway (and its in-memory repodata) lives as long
    as the agent, so a warm agent skips fetching and parsing repodata."""

    def __init__(
        self,
        cache_dir: Path,
        channel_alias: str,
        timeout: float,
        authorization: Callable[[str], str | None] | None = None,
    ) -> None:
        self.gateway = Gateway(cache_dir=cache_dir, client=_client(authorization))
        self.channel_alias = channel_alias
        self.timeout = timeout
        self.solver = SolverInfo("py-rattler (resolvo)", dist_version("py-rattler"))

    def channels(self, spec: Spec) -> list[str]:
        return [channel_url(c, self.channel_alias) for c in spec.channels]

    async def resolve(self, spec: Spec, platform: str) -> Resolution:
        urls = self.channels(spec)
        if not urls:
            raise UnsatisfiableError(
                "the spec names no channel", hint="add `channels:` to the file or pass `-c NAME`"
            )
        specs = spec.conda_specs_for(platform)
        virtual = rattler_virtual_packages(
            effective_virtual_packages(platform, dict(spec.virtual_packages))
        )
        subdirs: list[Any] = [platform, NOARCH]
        log.info("solving platform=%s specs=%s channels=%s", platform, specs, urls)
        try:
            records = await rattler.solve(
                [Channel(u) for u in urls],
                specs,
                gateway=self.gateway,
                platforms=subdirs,
                virtual_packages=virtual,
                timeout=timedelta(seconds=self.timeout),
            )
        except Exception as err:
            raise await self._explain(err, urls, platform) from err
        packages = tuple(sorted((_package(r) for r in records), key=lambda p: p.name))
        return Resolution(packages, self.solver)

    async def _explain(self, err: Exception, urls: list[str], platform: str) -> Exception:
        """Turn a py-rattler failure into the envd error a user can act on."""
        text = str(err).strip()
        kind = type(err).__name__
        where = f"channels {', '.join(f'`{u}`' for u in urls)} for `{platform}` (and `noarch`)"
        if kind == "GatewayError" or "could not find subdir" in text:
            return ChannelError(
                f"failed to fetch repodata: {text}",
                hint="check that each channel URL or folder exists and is reachable",
            )
        if "timed out" in text.lower() or "timeout" in text.lower():
            return SolveTimeoutError(f"solve for `{platform}` took over {self.timeout:g} s")
        match = _NO_CANDIDATES.search(text)
        if match:
            name = match.group("spec").split()[0]
            if not await self._exists(name, urls, platform):
                return PackageNotFoundError(
                    f"package `{name}` not found in {where}",
                    hint="check the name's spelling and the channel list",
                )
        return UnsatisfiableError(
            f"failed to solve the spec for `{platform}`: {text}",
            hint="relax the conflicting constraints above",
        )

    async def _exists(self, name: str, urls: list[str], platform: str) -> bool:
        try:
            subdirs: list[Any] = [platform, NOARCH]
            found = await self.gateway.query(
                [Channel(u) for u in urls], subdirs, [name], recursive=False
            )
        except Exception:  # the solve already failed; absence is the conservative answer
            return False
        return any(len(records) > 0 for records in found)


def _client(authorization: Callable[[str], str | None] | None) -> Client:
    """rattler's default middleware (auth storage, retries), plus the agent's own channel
    credentials (netrc, `ENVD_CHANNEL_TOKEN`) as an Authorization header per host."""
    middlewares: list[Any] = [AuthenticationMiddleware(), RetryMiddleware()]
    if authorization is not None:
        check = authorization

        def headers(host: str, path: str) -> dict[str, str] | None:
            value = check(f"https://{host}{path}")
            return {"Authorization": value} if value else None

        middlewares.insert(0, AddHeadersMiddleware(headers))
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
    )
