"""`links/<source sha256>.json`: the record naming the `.conda` envd made from a `.tar.bz2`.

Read only when its `.conda` is in the store (`live_link`); written create-only, so the first
agent to link an archive wins and every description names the same `.conda`; a corrupt or
dangling record is replaced by compare-and-swap (`publish_link`). Split out of
`archive_cache`, which makes the `.conda` and calls these.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from envd.description import PackageFormat
from envd.errors import EnvdError, PreconditionFailed, StoreError
from envd.store.base import Store
from envd.store.layout import LINK_FORMAT, package_key

log = logging.getLogger("envd.agent")  # as archive_cache: one agent log

_LINK_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class Link:
    """`links/<source sha256>.json`: the `.conda` envd made from a `.tar.bz2`."""

    source_sha256: str
    source_filename: str
    sha256: str
    filename: str
    size: int

    def encode(self) -> bytes:
        doc = {"schema": LINK_FORMAT, "source_sha256": self.source_sha256,
               "source_filename": self.source_filename, "sha256": self.sha256,
               "filename": self.filename, "size": self.size}  # fmt: skip
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def decode(cls, data: bytes, source_sha256: str) -> Link | None:
        """The link, or None if the bytes are not a valid link for this source."""
        try:
            doc = json.loads(data)
            link = cls(doc["source_sha256"], doc["source_filename"], doc["sha256"],
                       doc["filename"], int(doc["size"]))  # fmt: skip
            package_key(link.sha256, link.filename)  # refuses a bad sha256 or filename
        except (ValueError, TypeError, KeyError, EnvdError):
            return None
        valid = doc.get("schema") == LINK_FORMAT and link.source_sha256 == source_sha256
        return link if valid and link.filename.endswith(".conda") else None


def live_link(store: Store, key: str, sha256: str) -> Link | None:
    """The stored link if it parses and its `.conda` is in the store."""
    data = store.get(key)
    link = None if data is None else Link.decode(data, sha256)
    if link is None or store.stat(package_key(link.sha256, link.filename)) is None:
        return None
    return link


def publish_link(store: Store, key: str, link: Link) -> Link:
    """Write the link create-only; if another agent linked first (and its `.conda` is
    there) use theirs, so every description names the same `.conda`. A corrupt or dangling
    link is replaced by compare-and-swap."""
    for _ in range(_LINK_ATTEMPTS):
        if store.put_if_absent(key, link.encode()):
            return link
        current = store.get_versioned(key)
        if current is None:
            continue  # deleted in between: try to create it again
        data, version = current
        held = Link.decode(data, link.source_sha256)
        if held is not None and held == link:
            return link
        if held is not None and store.stat(package_key(held.sha256, held.filename)):
            return held
        try:
            store.compare_and_swap(key, version, link.encode())
        except PreconditionFailed:
            continue
        log.warning("replaced a corrupt or dangling link `%s`", key)
        return link
    raise StoreError(
        f"failed to write link `{key}`: it changed on each of {_LINK_ATTEMPTS} attempts",
        hint="many agents are racing on this archive; retry",
    )


def linked_format(link: Link) -> PackageFormat:
    """The `.conda` format a description lists for a linked `.tar.bz2`."""
    return PackageFormat(".conda", link.filename, link.sha256, link.size, link.source_sha256)
