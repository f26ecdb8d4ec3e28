"""Local directories and files named by PyPI requirements, packed by the client and uploaded
to the store content-addressed, so that an agent on another machine can read them.

A requirement `name @ file:///path` (what the spec readers make of `./pkg`, `/abs/x.tar.gz`,
`file:///…` and `name @ ./pkg`) becomes `name @ envd-source://sha256/<hex>/<filename>`: a
directory is packed into an sdist (`uv build --sdist` with this machine's python, in a temp
directory, with a timeout; then re-packed deterministically, so the same files give the same
bytes whatever their mtimes), a file (a wheel or an sdist) is taken as it is. The req_id thus
changes when the content changes, never when the path does. The bytes are stored at
`pkgs/<sha256>/<filename>`, the key every archive has; agents fetch them from there and check
the sha256 before uv sees them. A git requirement (`name @ git+…@rev`) is cloned at its commit
and packed like a directory (`client/git_sources.py`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from packaging.requirements import Requirement

from envd.errors import InvalidSpecError, StoreError
from envd.redaction import mask_text
from envd.redaction import tail as log_tail
from envd.spec import PypiDependency, RawDependency, Spec, normalize_pypi, source_url
from envd.store.base import Store
from envd.store.layout import package_key
from envd.uv import run_uv, uv_bin, uv_environment

DEFAULT_BUILD_TIMEOUT = 300.0
MAX_SOURCE_BYTES = 512 * 1024 * 1024
_SDIST_MTIME = 315532800  # 1980-01-01, the earliest time a zip (and so a wheel) can hold
# What the client's `uv build --sdist` takes from its environment besides `envd.uv.PASSED`:
# where the project's build backend comes from (this machine's index settings and login).
# Nothing else: no store or channel credentials reach the project's build backend.
CLIENT_INDEX_SETTINGS = (
    "UV_DEFAULT_INDEX", "UV_INDEX", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS",
    "UV_INSECURE_HOST", "UV_CACHE_DIR", "NETRC",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PackedSource:
    """One local source, packed: what the user named and the bytes the spec now names."""

    name: str
    origin: Path | str  # a local path, or `git+URL@commit` (client/git_sources.py)
    path: Path
    filename: str
    sha256: str
    size: int
    commit: str | None = None  # a git source's commit
    named: str = ""  # a git source's URL as the requirement names it (masked), rev included

    @property
    def key(self) -> str:
        return package_key(self.sha256, self.filename)

    @property
    def url(self) -> str:
        return source_url(self.sha256, self.filename)

    def to_json(self) -> dict[str, str | None]:
        """`spec --json`'s `sources` entry: what was packed, from where, as which bytes."""
        origin = f"git+{self.named}" if self.commit else str(self.origin)
        return {"name": self.name, "origin": origin, "commit": self.commit,
                "sha256": self.sha256, "filename": self.filename}  # fmt: skip


def git_notes(sources: tuple[PackedSource, ...]) -> list[str]:
    """One line per packed git source, for stderr: it was cloned and packed here, silently
    otherwise (`packed NAME from URL@REV (commit C) as envd-source://…`, the URL masked)."""
    return [
        f"packed {s.name} from {s.named} (commit {s.commit}) as {s.url}"
        for s in sources
        if s.commit
    ]


@dataclass(frozen=True, slots=True)
class PackedSpec:
    spec: Spec
    sources: tuple[PackedSource, ...]


def has_local_sources(spec: Spec) -> bool:
    return any(_local_path(d) is not None or _git_url(d) is not None for d in spec.pypi)


def pack_local_sources(
    spec: Spec,
    scratch: Path,
    *,
    python: str = sys.executable,
    timeout: float = DEFAULT_BUILD_TIMEOUT,
    environ: Mapping[str, str] | None = None,
) -> PackedSpec:
    """The spec with every local requirement replaced by its packed source's URL, and the
    sources (in `scratch`, which the caller removes). A spec without any is returned as is."""
    packed: dict[Path | str, PackedSource] = {}
    deps: list[PypiDependency] = []
    for dep in spec.pypi:
        path = _local_path(dep)
        git = _git_url(dep) if path is None else None
        origin = path if path is not None else git
        if origin is None:
            deps.append(dep)
            continue
        if origin not in packed:
            if git is not None:  # cloned at its commit, then packed as a directory
                from .git_sources import pack_git_source

                packed[origin] = pack_git_source(dep.name, git, scratch, python=python,
                                                 timeout=timeout, environ=environ)  # fmt: skip
            elif path is not None:
                packed[origin] = pack_source(dep.name, path, scratch, python=python,
                                             timeout=timeout, environ=environ)  # fmt: skip
        deps.append(_rewritten(dep, packed[origin]))
    if not packed:
        return PackedSpec(spec, ())
    pypi = tuple(sorted(set(deps), key=lambda d: (d.name, d.requirement, d.category,
                                                   d.selector or "")))  # fmt: skip
    return PackedSpec(replace(spec, pypi=pypi), tuple(packed.values()))


def upload_sources(sources: tuple[PackedSource, ...], store: Store) -> None:
    """Put each source at its content-addressed key (once: an existing key is the same bytes)."""
    for source in sources:
        try:
            store.put_file_if_absent(source.key, source.path)
        except OSError as err:
            raise StoreError(
                f"failed to upload local source `{source.origin}` to store `{store.url}`: {err}",
                hint="check that this machine may write to the store (`ENVD_STORE`)",
            ) from err


def pack_source(
    name: str, path: Path, scratch: Path, *, python: str = sys.executable,
    timeout: float = DEFAULT_BUILD_TIMEOUT, environ: Mapping[str, str] | None = None,
) -> PackedSource:  # fmt: skip
    """A directory built into a deterministic sdist, or a file as it is."""
    if path.is_dir():
        built = _build_sdist(path, scratch, python, timeout, environ)
    elif path.is_file():
        built = path
    else:
        raise InvalidSpecError(
            f"failed to pack local source `{path}` of `{name}`: no such directory or file",
            hint="the path is read when the request is sent; check it still exists",
        )
    size = built.stat().st_size
    if size > MAX_SOURCE_BYTES:
        raise InvalidSpecError(
            f"failed to pack local source `{path}` of `{name}`: {size} bytes is over the "
            f"limit of {MAX_SOURCE_BYTES} bytes",
            hint="publish the package to an index instead",
        )
    return PackedSource(name, path, built, built.name, _sha256(built), size)


def _build_sdist(
    project: Path, scratch: Path, python: str, timeout: float, environ: Mapping[str, str] | None
) -> Path:
    out = Path(tempfile.mkdtemp(prefix="sdist-", dir=scratch))
    env = sdist_environment(
        os.environ if environ is None else environ,
        Path(tempfile.mkdtemp(prefix="home-", dir=scratch)),
    )
    args = [uv_bin(), "build", "--sdist", "--out-dir", str(out), "--python", python,
            str(project)]  # fmt: skip
    try:
        run = run_uv(args, env=env, timeout=timeout, cwd=scratch)
    except subprocess.TimeoutExpired as err:
        raise InvalidSpecError(
            f"failed to pack local project `{project}`: `uv build --sdist` took over {timeout:g} s",
            hint="check that the project's build backend can be installed from here",
        ) from err
    built = sorted(out.glob("*.tar.gz"))
    if run.returncode != 0 or len(built) != 1:
        tail = log_tail(mask_text(run.stderr + run.stdout))  # index logins masked
        raise InvalidSpecError(
            f"failed to pack local project `{project}` into an sdist (`uv build --sdist` "
            f"exited {run.returncode}): {tail or 'no output'}",
            hint="fix the project's build (try `uv build --sdist` there), or name a built "
            "wheel or sdist file instead",
        )
    return normalize_sdist(built[0])


def sdist_environment(parent: Mapping[str, str], home: Path) -> dict[str, str]:
    """The environment of the client's `uv build --sdist`: envd's uv sandbox (a scratch HOME,
    no config files, no interpreter downloads) plus this machine's index settings
    (`CLIENT_INDEX_SETTINGS`), its netrc (`$NETRC`, else `~/.netrc` when there is one: a
    private index's login) and its uv cache (`$UV_CACHE_DIR`, else `$XDG_CACHE_HOME/uv`, else
    `~/.cache/uv`)."""
    user_home = Path(parent.get("HOME") or Path.home())
    cache = parent.get("UV_CACHE_DIR") or str(
        Path(parent.get("XDG_CACHE_HOME") or user_home / ".cache") / "uv"
    )
    extra = {name: parent[name] for name in CLIENT_INDEX_SETTINGS if parent.get(name)}
    if "NETRC" not in extra and (user_home / ".netrc").is_file():
        extra["NETRC"] = str(user_home / ".netrc")
    return uv_environment(parent, home=home, cache_dir=Path(cache), extra=extra)


def normalize_sdist(path: Path) -> Path:
    """Re-pack an sdist so its bytes depend on its files alone: members sorted, one mtime,
    no owners, plain modes, gzip without a timestamp. Rewritten in place; returns `path`."""
    with tarfile.open(path, "r:gz") as source:
        members = sorted(source.getmembers(), key=lambda m: m.name)
        contents = {
            m.name: source.extractfile(m).read() if m.isfile() else None  # type: ignore[union-attr]
            for m in members
        }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as target:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type = member.type
            info.mtime = _SDIST_MTIME
            info.mode = 0o755 if member.isdir() or member.mode & 0o111 else 0o644
            info.linkname = member.linkname
            data = contents[member.name]
            info.size = len(data) if data is not None else 0
            target.addfile(info, io.BytesIO(data) if data is not None else None)
    with (
        path.open("wb") as out,
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as compressed,
    ):
        compressed.write(raw.getvalue())
    return path


def _local_path(dep: PypiDependency) -> Path | None:
    url = Requirement(dep.requirement).url
    if not url or not url.lower().startswith("file:"):
        return None
    return Path(unquote(urlsplit(url).path))


def _git_url(dep: PypiDependency) -> str | None:
    url = Requirement(dep.requirement).url
    return url if url and url.lower().startswith("git+") else None


def _rewritten(dep: PypiDependency, source: PackedSource) -> PypiDependency:
    req = Requirement(dep.requirement)
    req.url = source.url
    raw = RawDependency(str(req), "<local source>", None, dep.category, dep.selector)
    return normalize_pypi(raw)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def packed_sources(spec: Spec, scratch_root: Path) -> Iterator[PackedSpec]:
    """`pack_local_sources` in a temp directory under `scratch_root`, removed afterwards."""
    if not has_local_sources(spec):
        yield PackedSpec(spec, ())
        return
    scratch_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="local-sources-", dir=scratch_root) as scratch:
        yield pack_local_sources(spec, Path(scratch))
