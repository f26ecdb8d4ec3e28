"""What the built-wheel cache saves: a PyPI resolve that must build two sdist-only packages
(pure python and a C extension, with setuptools from the tests' loopback index) on a native
agent, then the same resolve again, answered from the store's `built/` records.

`python -m bench.native_build_cache [--repeats N] [--json]` (figures in bench/README.md).
Each round starts from an empty store; uv's own cache stays warm across rounds, so the
difference is the builds (and their auditwheel checks), not the index."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.stats import Repeated, ratio
from envd.agents.fetch import Fetcher
from envd.agents.native_build import NativeBuilds
from envd.agents.pypi_resolver import PypiResolver
from envd.agents.resolver import ResolveRequest
from envd.spec import RawDependency, RawSpec, normalize_spec
from envd.store.local import LocalStore

TESTS = Path(__file__).resolve().parent.parent / "tests"
PLATFORM = "linux-64"


@dataclass(frozen=True, slots=True)
class BuildCache:
    built: Repeated  # first resolve: both wheels built
    reused: Repeated  # second resolve: both wheels from `built/`
    ratio: float  # built / reused (medians)
    saved_ms: float  # built - reused (medians)


def _index_module() -> Any:
    """The tests' index generator (tests/ is no package: imported by name, as bench/emulators)."""
    if str(TESTS) not in sys.path:
        sys.path.append(str(TESTS))
    return importlib.import_module("pypi_index")


def measure_build_cache(repeats: int, scratch: Path) -> BuildCache:
    pypi_index = _index_module()
    sdists = [pypi_index.Sdist("envd-pure", "1.0"),
              pypi_index.Sdist("envd-speed", "1.0", c_extension=True)]  # fmt: skip
    built: list[float] = []
    reused: list[float] = []
    with pypi_index.serve_index(scratch / "index", wheels=[], sdists=sdists) as index:
        spec = normalize_spec(RawSpec(
            pypi=[RawDependency("envd-pure"), RawDependency("envd-speed")], python="3.11",
            pypi_indexes=[index.url],
        ))  # fmt: skip
        for round_ in range(repeats + 1):  # round 0 warms uv's cache, uncounted
            store = LocalStore(scratch / f"store-{round_}")
            builds = NativeBuilds(
                store, Fetcher(), scratch / "cache", agent_id="bench", native_platform=PLATFORM,
                pythons={f"{sys.version_info[0]}.{sys.version_info[1]}": sys.executable},
            )  # fmt: skip
            resolver = PypiResolver(scratch / "cache", builds=builds)
            first = _timed(resolver, spec)
            second = _timed(resolver, spec)
            if (builds.built, builds.reused) != (2, 2):
                raise RuntimeError(f"failed to benchmark: built {builds.built}, reused "
                                   f"{builds.reused}, expected 2 and 2")  # fmt: skip
            if round_:
                built.append(first)
                reused.append(second)
    b, r = Repeated.of(built), Repeated.of(reused)
    return BuildCache(b, r, ratio(b.median_ms, r.median_ms), b.median_ms - r.median_ms)


def _timed(resolver: PypiResolver, spec: Any) -> float:
    start = time.perf_counter()
    asyncio.run(resolver.resolve(ResolveRequest(spec, PLATFORM)))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.native_build_cache")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="envd-bench-build-") as scratch:
        result = measure_build_cache(args.repeats, Path(scratch))
    if args.json:
        print(json.dumps(asdict(result), indent=2))
        return
    print("native build cache: PyPI resolve of 2 sdist-only packages, median (min-max) ms")
    for name, value in (("built (first resolve)", result.built),
                        ("reused (second resolve)", result.reused)):  # fmt: skip
        print(f"   {name:<26}{value.median_ms:8.1f}  ({value.min_ms:.1f}-{value.max_ms:.1f})")
    print(f"   ratio {result.ratio:.1f}x, saved {result.saved_ms:.0f} ms per resolve")


if __name__ == "__main__":
    main()
