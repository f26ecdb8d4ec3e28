"""Resolve at conda-forge scale: envd next to py-rattler alone on a generated channel of 200k
records (a real lock file's packages and `depends`, plus older versions), served over loopback.

`python -m bench.big_channel [--records 200000] [--repeats 3] [--scratch DIR] [--json]`.
Cold: `envd-client resolve --no-archives` in a fresh process on a fresh home next to a fresh
process that solves with py-rattler alone (`bench/rattler_cli.py`), each timed whole, in turn.
Warm: one embedded coordinator whose agent already holds the channel, next to one py-rattler
process with one hot Gateway; each is asked a spec it has not seen, in turn. Goal on both:
envd <= 1.1 x py-rattler + 0.3 s."""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from bench.channel import open_channel
from bench.lock_channel import PLATFORM, LockChannel, build_channel
from bench.resolve_bench import timed_resolve
from bench.stats import Repeated
from envd.client.api import EnvdClient
from envd.embedded import EmbeddedCoordinator
from envd.platforms import effective_virtual_packages
from envd.progress import Outcome
from envd.spec import Spec
from envd.spec_input import load_spec

BIN = Path(sys.executable).parent
RATTLER_CLI = Path(__file__).resolve().parent / "rattler_cli.py"
DEFAULT_SCRATCH = Path(tempfile.gettempdir()) / "envd-bench-big-channel"
GOAL_FACTOR, GOAL_SLACK_MS = 1.1, 300.0
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Pair:
    """envd and py-rattler on the same task; `limit_ms` is the goal envd must stay under."""

    envd: Repeated
    rattler: Repeated
    ratio: float  # envd / py-rattler, medians
    paired_ratio: float  # median of envd / py-rattler sample by sample: steadier under drift
    limit_ms: float  # GOAL_FACTOR x py-rattler + GOAL_SLACK_MS
    met: bool

    @classmethod
    def of(cls, envd: Sequence[float], rattler: Sequence[float]) -> Pair:
        ours, theirs = Repeated.of(envd), Repeated.of(rattler)
        paired = statistics.median(a / b for a, b in zip(envd, rattler, strict=True))
        limit = GOAL_FACTOR * theirs.median_ms + GOAL_SLACK_MS
        return cls(ours, theirs, ours.median_ms / theirs.median_ms, paired, limit,
                   ours.median_ms <= limit)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Usage:
    """One whole process: wall seconds, and user + sys CPU seconds of it and its children."""

    wall: float
    cpu: float


@dataclass(frozen=True, slots=True)
class BigChannelResolve:
    records: int
    packages: int
    specs: int
    channel: str
    cold: Pair  # whole processes, fresh home / fresh cache: wall time
    cold_cpu: Pair  # the same processes' user + sys CPU: steadier on a shared machine
    warm: Pair  # one request to a hot agent / one `rattler.solve` on a hot Gateway


def measure(records: int, repeats: int, scratch: Path, progress: Progress) -> BigChannelResolve:
    progress(f"channel: {records} records in {scratch} (generated once, then reused)")
    channel = build_channel(scratch, records)
    virtual = effective_virtual_packages(PLATFORM, channel.virtual_packages)
    with open_channel("http", channel.folder) as source:
        cold_envd: list[Usage] = []
        cold_rattler: list[Usage] = []
        for index in range(repeats):
            progress(f"cold {index + 1}/{repeats}: py-rattler process, then envd-client")
            cold_rattler.append(_cold_rattler(channel, source.url, virtual, scratch))
            cold_envd.append(_cold_envd(channel, source.url, scratch))
        warm_envd, warm_rattler = _warm(channel, source.url, virtual, repeats, scratch, progress)
    return BigChannelResolve(
        records=channel.records, packages=len(channel.expected), specs=len(channel.specs()),
        channel=source.url,
        cold=Pair.of([u.wall for u in cold_envd], [u.wall for u in cold_rattler]),
        cold_cpu=Pair.of([u.cpu for u in cold_envd], [u.cpu for u in cold_rattler]),
        warm=Pair.of(warm_envd, warm_rattler),
    )  # fmt: skip


def _clean_env(home: Path) -> dict[str, str]:
    """Nothing from the caller's envd or conda settings; config and caches inside `home`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ENVD_", "CONDA_OVERRIDE_"))}  # fmt: skip
    env.update(ENVD_HOME=str(home / ".envd"), XDG_CONFIG_HOME=str(home / "config"),
               XDG_CACHE_HOME=str(home / "cache"), XDG_DATA_HOME=str(home / "data"))  # fmt: skip
    return env


def _timed_process(argv: list[str], home: Path) -> tuple[Usage, str]:
    """One fresh process, timed whole, in its own empty home (removed after). A process killed
    by a signal (a native crash of the peer, seen once in a full test run) is run once more in
    a new home, and said on stderr: the timing of a run that died means nothing either way."""
    for attempt in (1, 2):
        run_home = (
            home if attempt == 1 else Path(tempfile.mkdtemp(prefix="retry-", dir=home.parent))
        )
        try:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(argv, cwd=run_home, env=_clean_env(run_home),
                                  capture_output=True, text=True, check=False)  # fmt: skip
            elapsed = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        finally:
            shutil.rmtree(run_home, ignore_errors=True)
        if done.returncode >= 0 or attempt == 2:
            break
        print(f"{argv[1]} was killed by {_signal_name(done.returncode)}; running it again",
              file=sys.stderr)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(
            f"failed to run `{argv[0]} {argv[1]}`: it exited with {_signal_name(done.returncode)}"
            f": {done.stderr[-2000:] or '(no output on stderr)'}"
        )
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Usage(elapsed, cpu), done.stdout


def _signal_name(returncode: int) -> str:
    """`status 2`, or the signal that killed a process (`SIGSEGV`)."""
    if returncode >= 0:
        return f"status {returncode}"
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _cold_rattler(channel: LockChannel, url: str, virtual: dict[str, str], scratch: Path) -> Usage:
    home = Path(tempfile.mkdtemp(prefix="rattler-", dir=scratch))
    argv = [sys.executable, str(RATTLER_CLI), "--channel", url, "--platform", PLATFORM,
            "--cache", str(home / "cache"), *_virtual_flags(virtual), *channel.specs()]  # fmt: skip
    usage, out = _timed_process(argv, home)
    _check(channel, {line.split()[0]: line.split()[1] for line in json.loads(out)}, "py-rattler")
    return usage


def _cold_envd(channel: LockChannel, url: str, scratch: Path) -> Usage:
    home = Path(tempfile.mkdtemp(prefix="envd-", dir=scratch))
    argv = [str(BIN / "envd-client"), "resolve", "--no-archives", "--json", "--arch", PLATFORM,
            "-c", url, *_virtual_flags(channel.virtual_packages),
            *(f"--package={spec}" for spec in channel.specs())]  # fmt: skip
    usage, out = _timed_process(argv, home)
    (environment,) = json.loads(out)["environments"]
    _check(channel, {p["name"]: p["version"] for p in environment["packages"]}, "envd")
    return usage


def _virtual_flags(values: dict[str, str], flag: str = "--virtual-package=") -> list[str]:
    return [f"{flag}{name}={value}" for name, value in sorted(values.items())]


def _check(channel: LockChannel, solved: dict[str, str], who: str) -> None:
    """A bench of a wrong answer measures nothing: both sides must return the lock."""
    if solved != channel.expected:
        wrong = sorted(set(solved.items()) ^ set(channel.expected.items()))[:5]
        raise RuntimeError(f"failed to benchmark: {who} did not solve to the lock: {wrong}")


def _warm(
    channel: LockChannel, url: str, virtual: dict[str, str], repeats: int, scratch: Path,
    progress: Progress,
) -> tuple[list[float], list[float]]:  # fmt: skip
    """Both sides first solve the roots (untimed: that loads the channel), then take turns on
    specs neither has seen."""
    home = Path(tempfile.mkdtemp(prefix="warm-", dir=scratch))
    argv = [sys.executable, str(RATTLER_CLI), "--warm", "--channel", url, "--platform", PLATFORM,
            "--cache", str(home / "rattler"), *_virtual_flags(virtual), *channel.specs()]  # fmt: skip
    envd_times: list[float] = []
    rattler_times: list[float] = []
    try:
        with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=_clean_env(home)) as rattler:  # fmt: skip
            assert rattler.stdin is not None and rattler.stdout is not None
            progress("warm: priming a py-rattler process and an embedded coordinator")
            if rattler.stdout.readline().strip() != "ready":
                raise RuntimeError("failed to benchmark: the py-rattler process did not start")
            with EmbeddedCoordinator(home / ".envd") as target, EnvdClient(target) as client:
                timed_resolve(client, _spec(channel, channel.specs(), url), PLATFORM,
                              force=False, expect=Outcome.RESOLVED)  # fmt: skip
                for index in range(repeats):
                    progress(f"warm {index + 1}/{repeats}: py-rattler, then envd")
                    specs = channel.unseen_specs(index)
                    rattler_times.append(_ask(rattler.stdin, rattler.stdout, specs, channel))
                    spec = _spec(channel, specs, url)
                    elapsed, _ = timed_resolve(client, spec, PLATFORM, force=False,
                                               expect=Outcome.RESOLVED)  # fmt: skip
                    envd_times.append(elapsed)
            rattler.stdin.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return envd_times, rattler_times


def _ask(stdin: IO[str], stdout: IO[str], specs: list[str], channel: LockChannel) -> float:
    stdin.write(json.dumps(specs) + "\n")
    stdin.flush()
    answer: dict[str, Any] = json.loads(stdout.readline())
    _check(channel, {p.split()[0]: p.split()[1] for p in answer["packages"]}, "py-rattler")
    return float(answer["seconds"])


def _spec(channel: LockChannel, specs: list[str], url: str) -> Spec:
    """What `envd-client resolve` builds from the same flags."""
    virtual = _virtual_flags(channel.virtual_packages, "")
    return load_spec(packages=specs, channels=[url], virtual_packages=virtual).spec


def render(result: BigChannelResolve) -> str:
    lines = [f"resolve at conda-forge scale: {result.records} records, {result.specs} specs -> "
             f"{result.packages} packages ({PLATFORM}, {os.cpu_count()} CPUs)"]  # fmt: skip
    lines.append("  median (min-max) ms; goal: envd <= 1.1 x py-rattler + 300 ms")
    rows = (("cold (CLI, fresh)", result.cold), ("  same, CPU ms", result.cold_cpu),
            ("warm (hot agent)", result.warm))  # fmt: skip
    for name, pair in rows:
        verdict = "met" if pair.met else "MISSED"
        lines.append(
            f"  {name:18} envd {_spread(pair.envd)}  py-rattler {_spread(pair.rattler)}  "
            f"ratio {pair.ratio:.2f} (paired {pair.paired_ratio:.2f})  "
            f"goal <= {pair.limit_ms:.0f}: {verdict}"
        )
    return "\n".join(lines)


def _spread(times: Repeated) -> str:
    return f"{times.median_ms:5.0f} ({times.min_ms:.0f}-{times.max_ms:.0f})"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.big_channel", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scratch", type=Path, default=DEFAULT_SCRATCH,
                        help="where the generated channel is kept (default %(default)s)")  # fmt: skip
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args(argv)
    options.scratch.mkdir(parents=True, exist_ok=True)
    result = measure(options.records, options.repeats, options.scratch, _stderr)
    print(json.dumps(asdict(result), indent=2) if options.json else render(result))


def _stderr(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
