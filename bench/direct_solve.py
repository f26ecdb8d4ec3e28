"""The raw-library baseline: `rattler.solve` called directly, with the agent's specs and
virtual packages so the only difference from envd is envd itself."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import rattler
from rattler import (
    Channel,
    Gateway,
    Subdir,
)

from envd.channels import channel_url
from envd.platforms import NOARCH, effective_virtual_packages, rattler_virtual_packages
from envd.spec import Spec

SOLVE_TIMEOUT = timedelta(seconds=300)  # what the embedded agent passes


class DirectSolver:
    """Solves one spec for one platform the way `agents/conda_resolver.py` does."""

    def __init__(self, spec: Spec, platform: str) -> None:
        self.channels = [Channel(channel_url(c)) for c in spec.channels]
        self.specs = spec.conda_specs_for(platform)
        self.subdirs = [Subdir(platform), Subdir(NOARCH)]
        self.virtual = rattler_virtual_packages(
            effective_virtual_packages(platform, dict(spec.virtual_packages))
        )

    def cold(self, repeats: int) -> list[float]:
        """Each solve gets a new Gateway on an empty cache dir: nothing fetched or parsed yet."""
        timings = []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory(prefix="envd-bench-rattler-") as cache:
                timings.append(asyncio.run(self._timed(Gateway(cache_dir=Path(cache)))))
        return timings

    def warm(self, repeats: int) -> list[float]:
        """One Gateway primed by an untimed solve, then reused, as a long-lived agent does."""
        with tempfile.TemporaryDirectory(prefix="envd-bench-rattler-") as cache:
            return asyncio.run(self._warm(Gateway(cache_dir=Path(cache)), repeats))

    def package_count(self) -> int:
        with tempfile.TemporaryDirectory(prefix="envd-bench-rattler-") as cache:
            return len(asyncio.run(self._solve(Gateway(cache_dir=Path(cache)))))

    async def _warm(self, gateway: Gateway, repeats: int) -> list[float]:
        await self._solve(gateway)
        return [await self._timed(gateway) for _ in range(repeats)]

    async def _timed(self, gateway: Gateway) -> float:
        start = time.perf_counter()
        await self._solve(gateway)
        return time.perf_counter() - start

    async def _solve(self, gateway: Gateway) -> Sequence[rattler.RepoDataRecord]:
        return await rattler.solve(
            self.channels,
            self.specs,
            gateway=gateway,
            platforms=self.subdirs,
            virtual_packages=self.virtual,
            timeout=SOLVE_TIMEOUT,
        )
