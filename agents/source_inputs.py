"""Local sources a client packed into the store (`name @ envd-source://sha256/<hex>/<file>`),
fetched into a resolve's work folder and checked against their sha256 before uv reads them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from packaging.requirements import Requirement

from envd.errors import ArchiveIntegrityError, StoreError
from envd.spec import parse_source_url
from envd.store.base import Store
from envd.store.layout import package_key

SOURCES_DIR = "sources"


def fetch_sources(requirements: Sequence[str], work: Path, store: Store | None) -> list[str]:
    """`requirements` with each `envd-source://` URL replaced by the `file://` URL of its bytes,
    downloaded from the store into `work/sources/<sha256>/<filename>` and verified."""
    resolved: list[str] = []
    for text in requirements:
        source = _source(text)
        if source is None:
            resolved.append(text)
            continue
        path = fetch_source(*source, work, store)
        req = Requirement(text)
        req.url = path.as_uri()
        resolved.append(str(req))
    return resolved


def source_of(path: str) -> tuple[str, str] | None:
    """`(sha256, filename)` of a file `fetch_sources` wrote (a path uv's pylock.toml names),
    to name the source in a description instead of the agent's temp path; None otherwise."""
    parts = Path(path).parts
    if len(parts) < 3 or parts[-3] != SOURCES_DIR:
        return None
    return parts[-2], parts[-1]


def _source(text: str) -> tuple[str, str] | None:
    url = Requirement(text).url
    return parse_source_url(url) if url else None


def fetch_source(sha256: str, filename: str, work: Path, store: Store | None) -> Path:
    """The source's bytes from the store at `work/sources/<sha256>/<filename>`, verified."""
    key = package_key(sha256, filename)
    if store is None:
        raise StoreError(f"failed to fetch local source `{filename}`: this resolver has no store")
    folder = work / SOURCES_DIR / sha256
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    if not store.download(key, path):
        raise StoreError(
            f"failed to fetch local source `{filename}`: `{key}` is not in store `{store.url}`",
            hint="envd-client uploads local sources before it sends the request; resolve "
            "again from the machine that has the files",
        )
    with path.open("rb") as data:
        actual = hashlib.file_digest(data, "sha256").hexdigest()
    if actual != sha256:
        path.unlink(missing_ok=True)
        raise ArchiveIntegrityError(
            f"failed to verify local source `{filename}` from the store: sha256 is "
            f"`{actual}`, the spec names `{sha256}`",
            hint=f"the stored copy is corrupt: delete `{key}` and resolve again",
        )
    return path
