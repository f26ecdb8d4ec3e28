"""`envd-client` as a shell runs it, whole process: `--version`, and a cache-hit `resolve` of the
embedded default (answered from its home's store, no daemon started), next to a bare
interpreter start, the floor no Python command goes under.

`python -m bench.client_startup` runs this section alone (the figures in bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.stats import Repeated, ratio

CLIENT = str(Path(sys.executable).parent / "envd-client")
TARGETS_MS = {"version": 150.0, "cache_hit_resolve": 300.0}  # issue 6's bounds, for the reader


@dataclass(frozen=True, slots=True)
class ClientStartup:
    python: Repeated  # `python -c pass`
    version: Repeated  # `envd-client --version`
    cache_hit: Repeated  # `envd-client resolve … --no-archives`, every platform a cache hit
    command: tuple[str, ...]  # the resolve timed, for the record


def measure_client_startup(
    channel: str,
    dependency: str,
    platform: str,
    repeats: int,
    scratch: Path,
    progress: Callable[[str], None],
) -> ClientStartup:
    """Runs alternate (python, --version, resolve, python, …) so drift hits each alike."""
    env = {**os.environ, "ENVD_HOME": str(scratch / "home"), "ENVD_CONFIG": "", "NO_COLOR": "1"}
    env.pop("ENVD_COORDINATOR", None)
    resolve = (CLIENT, "resolve", "-c", channel, "-p", dependency, "--arch", platform,
               "--no-archives", "--json")  # fmt: skip
    progress("client startup: first resolve fills the home's store")
    first = _run(resolve, env)
    if json.loads(first)["environments"][0]["outcome"] != "resolved":
        raise RuntimeError(f"failed to benchmark client startup: first resolve gave {first}")
    python: list[float] = []
    version: list[float] = []
    hit: list[float] = []
    for index in range(repeats + 1):  # the first round warms the page cache, uncounted
        progress(f"client startup: round {index}/{repeats}")
        samples = [
            _timed((sys.executable, "-c", "pass"), env),
            _timed((CLIENT, "--version"), env),
            _timed(resolve, env, expect="cache_hit"),
        ]
        if index:
            for kept, sample in zip((python, version, hit), samples, strict=True):
                kept.append(sample)
    return ClientStartup(Repeated.of(python), Repeated.of(version), Repeated.of(hit), resolve)


def _timed(argv: Sequence[str], env: dict[str, str], expect: str = "") -> float:
    start = time.perf_counter()
    out = _run(argv, env)
    elapsed = time.perf_counter() - start
    if expect and f'"outcome": "{expect}"' not in out:
        raise RuntimeError(f"failed to benchmark client startup: expected {expect}, got {out}")
    return elapsed


def _run(argv: Sequence[str], env: dict[str, str]) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"failed to benchmark client startup: `{' '.join(argv)}`: {done.stderr}")
    return done.stdout


def startup_document(startup: ClientStartup) -> dict[str, Any]:
    floor = startup.python.median_ms
    return {
        "python": asdict(startup.python),
        "version": asdict(startup.version),
        "cache_hit_resolve": asdict(startup.cache_hit),
        "ratio_version_over_python": ratio(startup.version.median_ms, floor),
        "ratio_cache_hit_over_python": ratio(startup.cache_hit.median_ms, floor),
        "targets_ms": TARGETS_MS,
    }


def startup_lines(doc: dict[str, Any], row: Callable[[str, dict[str, Any]], str]) -> list[str]:
    return [
        "7. client startup, whole process, median (min-max) ms",
        row("python -c pass", doc["python"]),
        row("envd-client --version", doc["version"]),
        row("cache-hit resolve", doc["cache_hit_resolve"]),
        f"   targets: --version <= {doc['targets_ms']['version']:g} ms, cache-hit resolve <= "
        f"{doc['targets_ms']['cache_hit_resolve']:g} ms",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    from bench.channel import open_channel
    from bench.report import repeat_row

    parser = argparse.ArgumentParser(prog="python -m bench.client_startup", description=__doc__)
    parser.add_argument("--repeats", type=int, default=10, help="runs of each (default 10)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    with open_channel("folder") as source, tempfile.TemporaryDirectory() as tmp:
        startup = measure_client_startup(
            source.url, "python=3.9", "linux-64", args.repeats, Path(tmp), lambda _: None
        )
    doc = startup_document(startup)
    print(json.dumps(doc, indent=2) if args.json else "\n".join(startup_lines(doc, repeat_row)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
