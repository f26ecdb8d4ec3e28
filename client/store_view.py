"""The client's own view of the store: which URL, and which archives are really there."""

from __future__ import annotations

from typing import Any

from envd.store.base import Store
from envd.store.layout import package_key
from envd.store.url import open_store

from .config import ClientConfig
from .readers import EnvironmentReader


def client_store(config: ClientConfig, reader: EnvironmentReader) -> Store:
    """The store named by config (`ENVD_STORE`, `store =`) or else the one read; the
    credentials are this machine's own (each SDK's standard chain)."""
    return open_store(config.store or reader.store_url)


def archive_url(store: Store, sha256: str, filename: str) -> str:
    """The URL of an archive in the store (what an installed environment's records name)."""
    return f"{store.url.rstrip('/')}/{package_key(sha256, filename)}"


def formats_present(description: dict[str, Any], store: Store) -> dict[str, list[dict[str, Any]]]:
    """Per package filename: each format the description lists, with `present` from the store."""
    present: dict[str, list[dict[str, Any]]] = {}
    for package in description["packages"]:
        rows = []
        for fmt in package.get("formats", []):
            info = store.stat(package_key(fmt["sha256"], fmt["filename"]))
            rows.append({**fmt, "present": info is not None})
        present[package["filename"]] = rows
    return present
