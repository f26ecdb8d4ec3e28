"""`envd-client resolve --lock` with an up-to-date lock (no solve: the lock's packages are
registered as they are) next to the same resolve without a lock (a solve), as whole processes
through the embedded default on the bundled channel (`examples/channels/conda-forge-python39`).

Each run gets a fresh home, so both are cold for their req_id (nothing to answer from the store)
and pay the same start-up; the two run in turn, locked then solved, so drift hits each alike,
after one uncounted round. Every run is checked: the locked one's description names the lock's
solver (`envd-lock`), the other's a real solver.

`python -m bench.lock_bench [--repeats N] [--records N [--scratch DIR]] [--json]` (the figures
in bench/README.md): `--records` measures on the conda-forge-scale channel `bench.big_channel`
generates instead (served over loopback), where the solve is most of the command.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.channel import EXAMPLE_CHANNEL
from bench.stats import Repeated, ratio

CLIENT = str(Path(sys.executable).parent / "envd-client")
SPEC = ("python=3.9",)
PLATFORM = "linux-64"
LOCK_SOLVER = "envd-lock"  # = envd.agents.locked_resolver.SOLVER_NAME


@dataclass(frozen=True, slots=True)
class LockResolve:
    locked: Repeated  # `resolve … --lock PATH --locked`, the lock up to date: no solve
    solved: Repeated  # `resolve …`, no lock: a solve
    packages: int
    specs: tuple[str, ...]
    command: tuple[str, ...]  # the resolve without a lock, for the record


def measure(
    repeats: int, scratch: Path, progress: Callable[[str], None] = lambda _: None, *,
    channel: str = "", specs: Sequence[str] = SPEC, flags: Sequence[str] = (),
) -> LockResolve:  # fmt: skip
    """`channel` (default the bundled one) and `specs` are what both sides resolve; `flags`,
    more options for both (`--virtual-package`)."""
    lock = scratch / "conda-lock.yml"
    resolve = (CLIENT, "resolve", "-c", channel or EXAMPLE_CHANNEL.resolve().as_uri(),
               *(f"--package={spec}" for spec in specs), *flags, "--arch", PLATFORM,
               "--no-archives", "--json")  # fmt: skip
    progress("lock bench: a missing lock is solved and written")
    _, packages = _run((*resolve, "--lock", str(lock)), scratch / "home-setup", solved=True)
    if not lock.exists():
        raise RuntimeError(f"failed to benchmark `resolve --lock`: `{lock}` was not written")
    locked: list[float] = []
    solved: list[float] = []
    for index in range(repeats + 1):  # the first round warms the page cache, uncounted
        progress(f"lock bench: round {index}/{repeats}")
        with_lock = (*resolve, "--lock", str(lock), "--locked")
        seconds_locked, _ = _run(with_lock, scratch / f"locked-{index}", solved=False)
        seconds_solved, _ = _run(resolve, scratch / f"solved-{index}", solved=True)
        if index:
            locked.append(seconds_locked)
            solved.append(seconds_solved)
    return LockResolve(Repeated.of(locked), Repeated.of(solved), packages, tuple(specs), resolve)


def _run(argv: Sequence[str], home: Path, *, solved: bool) -> tuple[float, int]:
    """Run on a fresh `home` and check the outcome and who resolved; the seconds the process
    took and the number of packages."""
    env = {**os.environ, "ENVD_HOME": str(home), "ENVD_CONFIG": "", "NO_COLOR": "1"}
    env.pop("ENVD_COORDINATOR", None)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"failed to benchmark `{' '.join(argv)}`: {done.stderr}")
    result = json.loads(done.stdout)
    (entry,) = result["environments"]
    path = home / "store" / "envs" / result["req_id"] / PLATFORM / f"{entry['full_id']}.json"
    solver = json.loads(path.read_text())["solver"]["name"]
    if entry["outcome"] != "resolved" or (solver == LOCK_SOLVER) == solved:
        raise RuntimeError(
            f"failed to benchmark `{' '.join(argv)}`: outcome `{entry['outcome']}` by solver "
            f"`{solver}`, expected a {'solve' if solved else 'locked resolve'} anew"
        )
    return seconds, len(entry["packages"])


def document(result: LockResolve) -> dict[str, Any]:
    def row(r: Repeated) -> dict[str, Any]:
        return {"median_ms": r.median_ms, "min_ms": r.min_ms, "max_ms": r.max_ms}

    return {
        "spec": list(result.specs),
        "platform": PLATFORM,
        "packages": result.packages,
        "command": list(result.command),
        "locked": row(result.locked),
        "solved": row(result.solved),
        "ratio_locked_over_solved": ratio(result.locked.median_ms, result.solved.median_ms),
        "load_average": os.getloadavg(),
    }


def lines(doc: dict[str, Any]) -> list[str]:
    def row(name: str, r: dict[str, Any]) -> str:
        return f"   {name:40} {r['median_ms']:8.1f}  ({r['min_ms']:.1f}-{r['max_ms']:.1f})"

    return [
        f"resolve of {_short(doc['spec'])} ({doc['packages']} packages, {doc['platform']}), "
        "whole process, cold req_id, median (min-max) ms",
        row("resolve --lock (up to date, no solve)", doc["locked"]),
        row("resolve without a lock (solve)", doc["solved"]),
        f"   ratio locked/solved: {doc['ratio_locked_over_solved']:.2f}; load average "
        + " ".join(f"{x:.2f}" for x in doc["load_average"]),
    ]


def _short(specs: Sequence[str]) -> str:
    return " ".join(specs) if len(specs) <= 3 else f"{' '.join(specs[:3])} +{len(specs) - 3} more"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lock_bench", description=__doc__)
    parser.add_argument("--repeats", type=int, default=10, help="counted rounds (default 10)")
    parser.add_argument(
        "--records",
        type=int,
        default=0,
        help="use a generated channel of this many records (bench.big_channel)",
    )
    parser.add_argument(
        "--scratch",
        type=Path,
        default=None,
        help="where the generated channel is kept and reused (default: a temp)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    repeats = max(1, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.records:
            doc = document(measure(repeats, Path(tmp)))
        else:
            from bench.channel import open_channel
            from bench.lock_channel import build_channel

            big = build_channel(args.scratch or Path(tmp), args.records)
            flags = [f"--virtual-package={k}={v}" for k, v in sorted(big.virtual_packages.items())]
            with open_channel("http", big.folder) as source:
                doc = document(measure(repeats, Path(tmp), channel=source.url,
                                       specs=big.specs(), flags=flags))  # fmt: skip
    print(json.dumps(doc, indent=2) if args.json else "\n".join(lines(doc)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
