"""Description bytes this user's machine has already verified in full (schema, full_id,
digest): identical bytes verify identically, so a later read of the very same bytes skips the
checks. A fresh `envd-client` process answering a cache hit of an ~900-package environment
spent most of its time compiling and running the schema check (bench/README.md).

The memo is one empty file per sha256 of the raw bytes, under the embedded home's
`cache/verified/` (the user's own): changed bytes in the store hash differently and get every
check again. Only the client's embedded cache-hit path uses it; coordinators keep verified
descriptions in memory instead."""

from __future__ import annotations

import hashlib
from pathlib import Path

MEMO_FORMAT = "v1"  # bump when what "verified" covers changes


class VerifiedMemo:
    def __init__(self, folder: Path) -> None:
        self.folder = folder / MEMO_FORMAT

    @staticmethod
    def key(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def knows(self, key: str) -> bool:
        return (self.folder / key[:2] / key).is_file()

    def remember(self, key: str) -> None:
        """Best effort: a memo that can't be written only costs the next read its checks."""
        try:
            (self.folder / key[:2]).mkdir(parents=True, exist_ok=True)
            (self.folder / key[:2] / key).touch()
        except OSError:
            pass
