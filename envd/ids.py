"""req_id and full_id: the two content hashes everything in envd is keyed by."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from envd.spec import Spec

ID_LENGTH = 40
_ID_PATTERN = re.compile(r"^[0-9a-f]{40}$")


def _short_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:ID_LENGTH]


def req_id(spec: Spec) -> str:
    """First 40 hex characters of sha256 over the canonical spec bytes."""
    return _short_sha256(spec.canonical_bytes())


@dataclass(frozen=True, slots=True)
class PackageIdentity:
    """What makes a resolved package itself. `sha256` is the archive's, except for a wheel envd
    built: there it is its source's (wheel builds are not byte-reproducible; the same source
    built twice is the same package, and gives the same full_id)."""

    kind: str
    name: str
    version: str
    build: str
    filename: str
    sha256: str

    def line(self) -> str:
        return "\t".join(
            (self.kind, self.name, self.version, self.build, self.filename, self.sha256)
        )


def full_id(packages: Iterable[PackageIdentity]) -> str:
    """First 40 hex characters of sha256 over the sorted identity lines, each ending in `\\n`."""
    lines = sorted(p.line() for p in packages)
    return _short_sha256("".join(f"{line}\n" for line in lines).encode())


def is_id(value: str) -> bool:
    return bool(_ID_PATTERN.match(value))
