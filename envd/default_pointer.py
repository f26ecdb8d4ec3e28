"""The default pointer of (req_id, platform): which full_id answers, and the digest of the exact
description version it was set to (docs/architecture.md, "Every stored byte is verified")."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from envd.description import parse_timestamp
from envd.ids import is_id
from envd.store.layout import DEFAULT_FORMAT

DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class DefaultPointer:
    req_id: str
    platform: str
    full_id: str
    resolved_at: str
    # The digest of the description it was set to; None in pointers written before digests,
    # which are never trusted (their default is resolved anew).
    digest: str | None = None


def decode_pointer(data: bytes, req_id: str, platform: str) -> DefaultPointer | None:
    """The pointer in `data`, or None if it is not a valid one for (req_id, platform)."""
    try:
        doc = json.loads(data)
        digest = doc.get("digest")
        pointer = DefaultPointer(
            req_id=doc["req_id"],
            platform=doc["platform"],
            full_id=doc["full_id"],
            resolved_at=doc["resolved_at"],
            digest=digest,
        )
        valid = (
            doc["schema"] == DEFAULT_FORMAT
            and (pointer.req_id, pointer.platform) == (req_id, platform)
            and is_id(pointer.full_id)
            and parse_timestamp(pointer.resolved_at) is not None
            and (digest is None or (isinstance(digest, str) and bool(DIGEST_PATTERN.match(digest))))
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        valid = False
    return pointer if valid else None


def encode_pointer(pointer: DefaultPointer) -> bytes:
    doc = {
        "schema": DEFAULT_FORMAT,
        "req_id": pointer.req_id,
        "platform": pointer.platform,
        "full_id": pointer.full_id,
        "resolved_at": pointer.resolved_at,
        "digest": pointer.digest,
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
