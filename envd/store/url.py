"""`open_store`: the one place a store URL picks its backend."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from envd.errors import StoreError
from envd.store.base import Store
from envd.store.local import LocalStore

_CLOUD_SCHEMES = ("s3", "gs", "az")
_SUPPORTED = (
    "`file:///path` or a plain directory path (`s3://`, `gs://`, `az://` land with the cloud "
    "backends)"
)


def open_store(url: str) -> Store:
    """`file:///abs/path` or a plain path → `LocalStore`; cloud schemes land later."""
    if not url.strip():
        raise StoreError("failed to open store ``: the store URL is empty", _hint())
    if "://" not in url:
        return LocalStore(Path(url).expanduser())
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise StoreError(
                f"failed to open store `{url}`: a file URL names no host (found `{parts.netloc}`)",
                hint="write an absolute path after three slashes: `file:///srv/envd`",
            )
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise StoreError(f"failed to open store `{url}`: the path is not absolute", _hint())
        return LocalStore(Path(path))
    if scheme in _CLOUD_SCHEMES:
        raise StoreError(
            f"failed to open store `{url}`: the `{scheme}://` backend lands with the cloud "
            "backends issue",
            hint="use a local store for now: `file:///path` or a plain directory path",
        )
    raise StoreError(f"failed to open store `{url}`: unknown scheme `{scheme}`", _hint())


def _hint() -> str:
    return f"supported store URLs: {_SUPPORTED}"
