"""A CLI-style solve by py-rattler alone, the baseline `bench.big_channel` runs as a process.

`python bench/rattler_cli.py --channel URL --cache DIR [--virtual-package NAME=VERSION[=BUILD]]
SPEC...` solves once and prints one JSON list of `name version build` (cold: a fresh process on
an empty cache). With `--warm` it solves the SPECs once, prints `ready`, then reads one JSON list
of specs per stdin line and answers each with `{"seconds": …, "packages": [...]}`, the time of
`rattler.solve` alone on its one hot Gateway. It imports nothing but rattler and the standard
library, as a small tool built on py-rattler would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import rattler
from rattler import (
    BuildString,
    Channel,
    Gateway,
    GenericVirtualPackage,
    PackageName,
    Subdir,
    Version,
)

TIMEOUT = timedelta(seconds=300)  # what the embedded agent passes


class Solver:
    def __init__(self, channel: str, platform: str, cache: Path, virtual: Sequence[str]) -> None:
        self.channels = [Channel(channel)]
        self.platforms = [Subdir(platform), Subdir("noarch")]
        self.gateway = Gateway(cache_dir=cache)
        self.virtual = [_virtual_package(text) for text in virtual]

    async def solve(self, specs: Sequence[str]) -> list[str]:
        records = await rattler.solve(
            self.channels, specs, gateway=self.gateway, platforms=self.platforms,
            virtual_packages=self.virtual, timeout=TIMEOUT,
        )  # fmt: skip
        return sorted(f"{r.name.normalized} {r.version} {r.build}" for r in records)

    async def serve(self, specs: Sequence[str]) -> None:
        await self.solve(specs)
        print("ready", flush=True)
        for line in sys.stdin:
            asked = json.loads(line)
            start = time.perf_counter()
            packages = await self.solve(asked)
            elapsed = time.perf_counter() - start
            print(json.dumps({"seconds": elapsed, "packages": packages}), flush=True)


def _virtual_package(text: str) -> GenericVirtualPackage:
    """`__glibc=2.17`, `__archspec=1=x86_64`: envd's `--virtual-package` form."""
    name, _, value = text.partition("=")
    version, _, build = value.partition("=")
    return GenericVirtualPackage(PackageName(name), Version(version), BuildString(build or "0"))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="rattler_cli.py", description=__doc__)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--platform", default="linux-64")
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--virtual-package", action="append", default=[])
    parser.add_argument("--warm", action="store_true")
    parser.add_argument("specs", nargs="+")
    args = parser.parse_args(argv)
    solver = Solver(args.channel, args.platform, args.cache, args.virtual_package)
    if args.warm:
        asyncio.run(solver.serve(args.specs))
        return
    print(json.dumps(asyncio.run(solver.solve(args.specs))))


if __name__ == "__main__":
    main()
