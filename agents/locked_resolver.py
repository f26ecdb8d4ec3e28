"""The resolver of an imported lock: the lock's packages for the job's platform, unsolved."""

from __future__ import annotations

import envd
from envd.description import ResolvedPackage, SolverInfo
from envd.errors import InvalidSpecError
from envd.locks import LockedPackage

from .resolver import Resolution, ResolveRequest

SOLVER_NAME = "envd-lock"  # what a description of an imported lock names as its solver


class LockedResolver:
    """A `Resolver` for specs with a `locked` form (envd.locks): it reads no index and solves
    nothing; the answer is the lock's packages for the request's platform, as the lock pins
    them. Their archives are fetched and checked against the lock's hashes by the archive
    cache, like any resolution's. Pure, instant, safe to call concurrently."""

    async def resolve(self, request: ResolveRequest) -> Resolution:
        for entry in request.spec.locked:
            if entry.platform == request.platform:
                packages = tuple(resolved_package(p) for p in entry.packages)  # sorted
                return Resolution(packages, SolverInfo(SOLVER_NAME, envd.__version__))
        raise InvalidSpecError(
            f"the lock pins no packages for `{request.platform}`",
            hint="the lock pins: " + ", ".join(f"`{lp.platform}`" for lp in request.spec.locked),
        )


def resolved_package(package: LockedPackage) -> ResolvedPackage:
    return ResolvedPackage(
        kind=package.kind,
        name=package.name,
        version=package.version,
        build=package.build,
        channel=package.channel,
        url=package.url,
        filename=package.filename,
        sha256=package.sha256,
        md5=package.md5,
        size=package.size,
        subdir=package.subdir,
        depends=package.depends,
        build_number=package.build_number,
        noarch=package.noarch,
    )
