"""Mixed conda + PyPI resolution: conda first, then PyPI around what conda already provides."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from envd.description import ResolvedPackage, SolverInfo
from envd.errors import InternalError, InvalidSpecError, UnsatisfiableError

from .pypi_names import PypiNames
from .pypi_resolver import PypiResolver
from .resolver import Resolution, Resolver, ResolveRequest
from .stub_index import HeldPackage, pep440_version, serve_stubs

log = logging.getLogger("envd.agent")
PYTHON = "python"


class MixedResolver:
    """Resolves mixed specs (the `Resolver` protocol) as pixi does: the conda part first with
    `conda` (it provides python), then the PyPI part with `pypi` for that python's version,
    every PyPI distribution the conda solution provides (`names`) held at its conda version.

    Held packages are served to uv as metadata-only stub wheels from a loopback index given
    first, with `--index-strategy first-index`: uv takes those names from the stubs alone, so
    it can neither upgrade nor re-add them, and a requirement the conda version does not meet
    fails the resolve naming it. The stubs are then left out of the resolution, after checking
    that each came from the stub index at the held version. Its promises are the two
    resolvers' (deadlines, cancellation, errors): each stage runs under its own deadline."""

    def __init__(self, conda: Resolver, pypi: PypiResolver, names: PypiNames) -> None:
        self.conda = conda
        self.pypi = pypi
        self.names = names

    async def resolve(self, request: ResolveRequest) -> Resolution:
        conda = await self.conda.resolve(request)
        wanted = request.spec.pypi_requirements_for(request.platform)
        if not wanted:  # every PyPI requirement is for other platforms (selectors, markers)
            return conda
        python = python_version(conda.packages, request.platform)
        held = held_packages(conda.packages, self.names)
        _refuse_urls_for_held(wanted, held, request.platform)
        log.info("resolving pypi of a mixed spec platform=%s python=%s held=%d",
                 request.platform, python, len(held))  # fmt: skip
        async with serve_stubs(held) as stub_index:
            try:
                pypi = await self.pypi.resolve(
                    request,
                    python_version=python,
                    stub_index=stub_index,
                    conda=conda.packages,
                )
            except UnsatisfiableError as err:
                raise _with_held(err, held, wanted) from err
        packages = drop_held(pypi.packages, held, stub_index)
        # shown as "<name> <version>": `py-rattler (resolvo) 0.28.0 + uv 0.13.9`
        both = f"{conda.solver.name} {conda.solver.version} + {pypi.solver.name}"
        return Resolution(
            tuple(sorted((*conda.packages, *packages), key=lambda p: (p.name, p.kind))),
            SolverInfo(both, pypi.solver.version),
        )


def python_version(conda: Sequence[ResolvedPackage], platform: str) -> str:
    """The conda solution's python as uv's `--python-version` (`3.9.19`; `3.13` for a
    pre-release such as `3.13.0rc1`, whose micro is not out yet)."""
    record = next((p for p in conda if p.kind == "conda" and p.name == PYTHON), None)
    if record is None:
        raise InvalidSpecError(
            f"failed to resolve the PyPI part of the mixed spec for `{platform}`: the conda "
            "solution has no `python` to resolve the PyPI requirements for",
            hint="add `python` to the conda dependencies (e.g. `python=3.11`, or `--python 3.11`)",
        )
    try:
        version = Version(record.version)
    except InvalidVersion as err:
        raise InvalidSpecError(
            f"failed to resolve the PyPI part of the mixed spec for `{platform}`: conda's "
            f"python `{record.version}` is not a version PyPI tools know",
            hint="pin a released python (e.g. `python=3.11`)",
        ) from err
    major, minor, micro = (*version.release, 0, 0)[:3]
    return f"{major}.{minor}" if version.pre or version.dev else f"{major}.{minor}.{micro}"


def held_packages(conda: Iterable[ResolvedPackage], names: PypiNames) -> list[HeldPackage]:
    """The PyPI distributions the conda packages provide, each at its conda version (when two
    conda packages claim one PyPI name, the first by conda name holds it)."""
    held: dict[str, HeldPackage] = {}
    for record in sorted(conda, key=lambda p: p.name):
        if record.kind != "conda":
            continue
        for name in names.provided(record.name, record.depends):
            held.setdefault(
                name, HeldPackage(name, pep440_version(record.version), record.name, record.version)
            )
    return sorted(held.values(), key=lambda h: h.name)


def drop_held(
    packages: Iterable[ResolvedPackage], held: Sequence[HeldPackage], stub_index: str
) -> tuple[ResolvedPackage, ...]:
    """The PyPI packages without the held ones, each of which must be the stub as served (the
    stub index's URL, the held version): anything else means uv replaced a conda package."""
    by_name = {h.name: h for h in held}
    files = stub_index.removesuffix("/simple") + "/files/"
    kept = []
    for package in packages:
        stub = by_name.get(package.name)
        from_stubs = package.url.startswith(files)
        if stub is None and not from_stubs:
            kept.append(package)
        elif stub is None or not from_stubs or not _same_version(package.version, stub.version):
            raise InternalError(
                f"failed to resolve the PyPI part of the mixed spec: uv chose `{package.name} "
                f"{package.version}` from `{package.url}`, but conda provides "
                + (f"`{stub.conda_name} {stub.conda_version}`" if stub else "no such package"),
                hint="uv did not keep the conda packages fixed; report this with the spec",
            )
    return tuple(kept)


def _same_version(left: str, right: str) -> bool:
    try:
        return Version(left) == Version(right)
    except InvalidVersion:
        return left == right


def _refuse_urls_for_held(
    requirements: Sequence[str], held: Sequence[HeldPackage], platform: str
) -> None:
    """A direct URL (`six @ https://…`) for a name conda provides would make uv replace the
    conda package: refused, naming both."""
    by_name = {h.name: h for h in held}
    for text in requirements:
        requirement = Requirement(text)
        stub = by_name.get(canonicalize_name(requirement.name))
        if requirement.url and stub is not None:
            raise UnsatisfiableError(
                f"failed to resolve the mixed spec for `{platform}`: PyPI requirement `{text}` "
                f"replaces conda package `{stub.conda_name} {stub.conda_version}`, which "
                f"provides `{stub.name}`",
                hint=f"drop `{stub.conda_name}` from the conda dependencies, or the direct URL "
                "from the PyPI ones",
            )


def _with_held(
    err: UnsatisfiableError, held: Sequence[HeldPackage], requirements: Sequence[str]
) -> UnsatisfiableError:
    """uv's conflict, plus which conda packages it involves and at which version they are held."""
    involved = [h for h in held if re.search(rf"\b{re.escape(h.name)}\b", err.message)]
    if not involved:
        return err
    listed = ", ".join(f"`{h.name} {h.version}` (conda `{h.conda_name} {h.conda_version}`)"
                       for h in involved)  # fmt: skip
    return UnsatisfiableError(
        f"{err.message}; held at the conda solution's versions: {listed}",
        hint="the conda packages win in a mixed environment: change the conda pin, or relax "
        f"the PyPI requirements ({', '.join(f'`{r}`' for r in requirements)})",
    )
