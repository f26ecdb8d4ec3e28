"""A PyPI resolve through envd (client → daemon → agent → `uv pip compile`, cold for the
req_id) next to `uv pip compile` alone, on the same requirements and the same loopback index.

Each round gets a req_id of its own (a distinct `--exclude-newer` moment in the future, which
admits every file, given to both sides), so envd resolves every time instead of answering from
the store; uv's cache is warm on both sides after one uncounted round. The two run in turn,
envd then uv, so drift hits each alike.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.channel import ROOT
from bench.stats import Repeated, ratio
from envd.agents.pypi_target import pypi_target
from envd.client.api import EnvdClient
from envd.embedded import EmbeddedCoordinator
from envd.progress import Outcome
from envd.spec import RawDependency, RawSpec, normalize_spec
from envd.uv import uv_bin

REQUIREMENTS = ("envd-app",)  # 2.0 and its two dependencies for linux-64
PLATFORM = "linux-64"
PYTHON = "3.11"


@dataclass(frozen=True, slots=True)
class PypiResolve:
    envd: Repeated  # client.resolve, no archives
    envd_archives: Repeated  # client.resolve with archives (the wheels are stored by then)
    uv: Repeated  # `uv pip compile` alone
    packages: int


def _serve_index(folder: Path) -> Any:
    """The tests' generated loopback index (tests/pypi_index.py): one index for both sides."""
    sys.path.insert(0, str(ROOT / "tests"))
    return importlib.import_module("pypi_index").serve_index(folder)


def measure(repeats: int, home: Path) -> PypiResolve:
    envd_s: list[float] = []
    archives_s: list[float] = []
    uv_s: list[float] = []
    packages = 0
    with _serve_index(home / "index") as index, EmbeddedCoordinator(home / "envd") as target:
        with EnvdClient(target) as client:
            client.info()
            for round_ in range(repeats + 1):  # round 0 warms both uv caches, uncounted
                moment = f"2030-01-01T00:{round_ // 60:02d}:{round_ % 60:02d}Z"
                seconds, packages = _envd(client, index.url, moment, no_archives=True)
                with_archives, _ = _envd(client, index.url, moment.replace("2030", "2031"),
                                         no_archives=False)  # fmt: skip
                alone = _uv(index.url, moment, home / "uv")
                if round_:
                    envd_s.append(seconds)
                    archives_s.append(with_archives)
                    uv_s.append(alone)
    return PypiResolve(Repeated.of(envd_s), Repeated.of(archives_s), Repeated.of(uv_s), packages)


def _envd(client: EnvdClient, index: str, moment: str, *, no_archives: bool) -> tuple[float, int]:
    raw = RawSpec(pypi=[RawDependency(r) for r in REQUIREMENTS], python=PYTHON,
                  pypi_indexes=[index], exclude_newer=moment)  # fmt: skip
    spec = normalize_spec(raw)
    started = time.perf_counter()
    result = client.resolve(spec, [PLATFORM], no_archives=no_archives)
    seconds = time.perf_counter() - started
    event = result.events[PLATFORM]
    if event.outcome is not Outcome.RESOLVED or event.description is None:
        raise RuntimeError(f"envd did not resolve anew: {event.outcome} {event.error}")
    return seconds, len(event.description["packages"])


def _uv(index: str, moment: str, work: Path) -> float:
    """The agent's own command line (agents/pypi_resolver.py), on this process's python."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "requirements.in").write_text("\n".join(REQUIREMENTS) + "\n")
    target = pypi_target(PLATFORM, f"{PYTHON}.*", {})
    args = [uv_bin(), "pip", "compile", "requirements.in", "--output-file", "pylock.toml",
            "--format", "pylock.toml", "--python", sys.executable,
            "--python-version", target.python_version,
            "--python-platform", target.python_platform, "--index-url", index,
            "--no-header", "--quiet", "--exclude-newer", moment]  # fmt: skip
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(work), "UV_NO_CONFIG": "1",
           "UV_PYTHON_DOWNLOADS": "never", "UV_CACHE_DIR": str(work / "cache")}  # fmt: skip
    started = time.perf_counter()
    subprocess.run(args, cwd=work, env=env, check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


def document(result: PypiResolve) -> dict[str, Any]:
    def row(r: Repeated) -> dict[str, Any]:
        return {"median_ms": r.median_ms, "min_ms": r.min_ms, "max_ms": r.max_ms}

    return {
        "requirements": list(REQUIREMENTS),
        "packages": result.packages,
        "envd_no_archives": row(result.envd),
        "envd_with_archives": row(result.envd_archives),
        "uv_pip_compile": row(result.uv),
        "ratio_envd_over_uv": ratio(result.envd.median_ms, result.uv.median_ms),
        "ratio_envd_archives_over_uv": ratio(result.envd_archives.median_ms, result.uv.median_ms),
        "load_average": os.getloadavg(),
    }


def lines(doc: dict[str, Any]) -> list[str]:
    def row(name: str, r: dict[str, Any]) -> str:
        return f"   {name:34} {r['median_ms']:8.1f}  ({r['min_ms']:.1f}-{r['max_ms']:.1f})"

    return [
        f"PyPI resolve of {', '.join(doc['requirements'])} ({doc['packages']} packages, "
        f"{PLATFORM}), median (min-max) ms",
        row("envd, cold req_id, no archives", doc["envd_no_archives"]),
        row("envd, cold req_id, with archives", doc["envd_with_archives"]),
        row("uv pip compile alone", doc["uv_pip_compile"]),
        f"   ratio envd/uv: {doc['ratio_envd_over_uv']:.2f} (with archives "
        f"{doc['ratio_envd_archives_over_uv']:.2f}); load average "
        + " ".join(f"{x:.2f}" for x in doc["load_average"]),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pypi_resolve_bench",
                                     description=__doc__)  # fmt: skip
    parser.add_argument("--repeats", type=int, default=7, help="counted rounds (default 7)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        doc = document(measure(max(1, args.repeats), Path(tmp)))
    print(json.dumps(doc, indent=2) if args.json else "\n".join(lines(doc)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
