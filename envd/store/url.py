"""`open_store`: the one place a store URL picks its backend."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from envd.errors import StoreError
from envd.store.base import Store
from envd.store.local import LocalStore

_SUPPORTED = (
    "`file:///path` or a plain directory path, `s3://bucket/prefix`, `gs://bucket/prefix`, "
    "`az://container/prefix`"
)


def open_store(url: str) -> Store:
    """`file:///abs/path` or a plain path → `LocalStore`; `s3://`, `gs://`, `az://` → the
    cloud backends (imported only when used), each configured by its SDK's standard chain."""
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
    if scheme == "s3":
        from envd.store.s3 import S3Store

        return S3Store.from_url(url)
    if scheme == "gs":
        from envd.store.gcs import GcsStore

        return GcsStore.from_url(url)
    if scheme == "az":
        from envd.store.azure import AzureStore

        return AzureStore.from_url(url)
    raise StoreError(f"failed to open store `{url}`: unknown scheme `{scheme}`", _hint())


def _hint() -> str:
    return f"supported store URLs: {_SUPPORTED}"
