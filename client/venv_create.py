"""`create`'s PyPI part: a pypi-only environment's virtualenv, a mixed one's wheels, from the store.

Each wheel is downloaded from the store and its sha256 checked before anything is installed;
uv installs offline, without resolving (`--no-deps`) and checking the hashes again; afterwards
the virtualenv must hold exactly the description's packages (a mixed prefix: every wheel at its
version, beside conda's own). A failure removes what this call made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from rattler import Version, VersionSpec

from envd.errors import ArchiveIntegrityError, EnvironmentNotFoundError, InstallError
from envd.store.base import Store
from envd.uv import run_uv, uv_bin, uv_environment

from .create import CachedArchive, download_package, install, undo_prefix

Progress = Callable[[str], None]
WHEEL = ".whl"
_TIMEOUT = 600.0  # one uv step (venv, install, list)
_MAX_CAUSE = 600


@dataclass(frozen=True, slots=True)
class CachedWheel:
    name: str
    version: str
    filename: str
    sha256: str
    path: Path


def is_pypi_only(description: dict[str, Any]) -> bool:
    return description.get("env_type") == "pypi-only"


def check_python(description: dict[str, Any]) -> None:
    """The environment's python must be this client's, the virtualenv's interpreter."""
    wanted = description["spec"].get("python")
    host = ".".join(str(part) for part in sys.version_info[:3])
    if wanted and not VersionSpec(wanted).matches(Version(host)):
        raise InstallError(
            f"failed to create environment `{description['full_id']}`: it is for python "
            f"`{wanted}` and this client runs python {host}",
            hint=f"run `create` with a python matching `{wanted}`, or resolve for {host}",
        )


def fetch_wheels(
    description: dict[str, Any], store: Store, into: Path, progress: Progress
) -> list[CachedWheel]:
    """Download every package's wheel from the store, verifying its sha256."""
    wheels = []
    packages = [p for p in description["packages"] if p["kind"] == "pypi"]
    for index, package in enumerate(packages, 1):
        wheels.append(_fetch(package, store, into))
        progress(f"fetched {index}/{len(packages)} {wheels[-1].filename}")
    return wheels


def _fetch(package: dict[str, Any], store: Store, into: Path) -> CachedWheel:
    chosen = next((f for f in package.get("formats", []) if f["format"] == WHEEL), None)
    if chosen is None:
        raise EnvironmentNotFoundError(
            f"failed to create environment: package `{package['filename']}` has no wheel in "
            "the store (it was resolved with `--no-archives`)",
            hint="resolve it again without `--no-archives` and with `--force`",
        )
    filename = chosen["filename"]
    dest, actual = download_package(store, chosen, into, "wheels")
    if actual != chosen["sha256"] or actual != package["sha256"]:
        dest.unlink()
        raise ArchiveIntegrityError(
            f"failed to verify `{filename}` from the store: sha256 is `{actual}`, the "
            f"description says `{package['sha256']}`",
            hint="the stored wheel is corrupt; delete it and resolve again with `--force`",
        )
    return CachedWheel(package["name"], package["version"], filename, actual, dest)


def install_venv(
    wheels: list[CachedWheel], prefix: Path, scratch: Path, cache_dir: Path, *, force: bool
) -> None:
    """Make a virtualenv at `prefix` (`uv venv`) and install exactly `wheels` into it."""
    existed = prefix.exists()
    before = set(prefix.iterdir()) if existed else set()
    env = uv_environment(os.environ, home=scratch, cache_dir=cache_dir)
    try:
        _uv(["venv", "--python", sys.executable, *(["--allow-existing"] if force else []),
             str(prefix)], env, prefix)  # fmt: skip
        install_wheels(wheels, prefix, scratch, cache_dir, only=True)
    except BaseException:
        undo_prefix(prefix, existed, before)  # the same rule as the conda `create`
        raise


def install_mixed(
    archives: list[CachedArchive],
    wheels: list[CachedWheel],
    prefix: Path,
    platform: str,
    scratch: Path,
    cache_dir: Path,
) -> None:
    """A mixed (or conda-only: no wheels) environment: the conda part first (it brings the
    python), then the wheels into that same prefix, for its own python. Either failing removes
    what this call made."""
    existed = prefix.exists()
    before = set(prefix.iterdir()) if existed else set()
    install(archives, prefix, platform, cache_dir / "rattler")  # undoes itself on failure
    if not wheels:
        return
    try:
        install_wheels(wheels, prefix, scratch, cache_dir / "uv", only=False)
    except BaseException:
        undo_prefix(prefix, existed, before)
        raise


def prefix_python(prefix: Path) -> Path:
    """The interpreter of an environment at `prefix` (conda's layout, and a virtualenv's)."""
    windows = prefix / "python.exe"
    return windows if windows.exists() else prefix / "bin" / "python"


def install_wheels(
    wheels: list[CachedWheel], prefix: Path, scratch: Path, cache_dir: Path, *, only: bool
) -> None:
    """Install `wheels` for the python of `prefix` (offline, no resolving, hashes checked),
    then check what it lists: exactly the wheels when `only`, else at least them (a conda
    prefix also lists conda's python packages)."""
    env = uv_environment(os.environ, home=scratch, cache_dir=cache_dir)
    requirements = scratch / "requirements.txt"
    requirements.write_text(
        "".join(
            f"{w.name} @ {w.path.resolve().as_uri()} --hash=sha256:{w.sha256}\n" for w in wheels
        )
    )
    python = str(prefix_python(prefix))
    if wheels and not Path(python).exists():
        raise InstallError(
            f"failed to create environment in `{prefix}`: its PyPI packages need the "
            f"environment's python, and `{python}` does not exist",
            hint="the conda part must include `python`; resolve again with `python` in it",
        )
    # a conda python marked EXTERNALLY-MANAGED (PEP 668) still takes this environment's own
    # wheels: envd made the prefix, and the wheels are never conda's (held at resolve time)
    managed = [] if only else ["--break-system-packages"]
    if wheels:
        _uv(["pip", "install", "--python", python, "--offline", "--no-index", "--no-deps",
             "--require-hashes", *managed, "-r", str(requirements)], env, prefix)  # fmt: skip
    listing = _uv(["pip", "list", "--python", python, "--format", "json"], env, prefix)
    _check_installed(prefix, wheels, listing, only=only)


def _uv(args: list[str], env: dict[str, str], prefix: Path) -> str:
    try:
        done = run_uv([uv_bin(), *args], env=env, timeout=_TIMEOUT)
    except subprocess.TimeoutExpired as err:
        raise InstallError(
            f"failed to create environment in `{prefix}`: `uv {args[0]}` took over {_TIMEOUT:g} s"
        ) from err
    if done.returncode != 0:
        cause = " ".join(line.strip() for line in done.stderr.splitlines() if line.strip())
        raise InstallError(
            f"failed to create environment in `{prefix}`: `uv {' '.join(args[:2])}` said: "
            + (cause if len(cause) <= _MAX_CAUSE else cause[: _MAX_CAUSE - 1] + "…"),
        )
    return done.stdout


def _check_installed(prefix: Path, wheels: list[CachedWheel], listing: str, *, only: bool) -> None:
    """The environment holds the wheels' (name, version): nothing missing, and (`only`)
    nothing more."""
    listed = json.loads(listing or "[]")
    installed = {(canonicalize_name(str(p["name"])), str(p["version"])) for p in listed}
    wanted = {(canonicalize_name(w.name), w.version) for w in wheels}
    if not only:
        installed = {(n, v) for n, v in installed if n in {name for name, _ in wanted}}
    if installed != wanted:
        missing = sorted(f"{n} {v}" for n, v in wanted - installed)
        extra = sorted(f"{n} {v}" for n, v in installed - wanted)
        raise InstallError(
            f"failed to create environment in `{prefix}`: missing {missing or 'nothing'}, "
            f"not in the description {extra or 'nothing'}",
            hint="uv did not install what the description lists",
        )
