"""`built/<source sha256>/<python tag>/<platform>.json`: the record of a wheel envd built,
read back only for the source, python and platform it is for."""

from __future__ import annotations

import json
from dataclasses import dataclass

from envd.errors import EnvdError
from envd.store.layout import BUILT_FORMAT, package_key

from .pypi_target import PypiTarget
from .wheel_fit import wheel_rank


@dataclass(frozen=True, slots=True)
class BuiltRecord:
    """`built/<source sha256>/<python tag>/<platform>.json`: the wheel built from one source
    for one python and platform, in `pkgs/`."""

    source_sha256: str
    source_url: str
    python: str
    platform: str
    filename: str
    sha256: str
    size: int
    agent: str

    def encode(self) -> bytes:
        doc = {"schema": BUILT_FORMAT, "source_sha256": self.source_sha256,
               "source_url": self.source_url, "python": self.python,
               "platform": self.platform, "filename": self.filename, "sha256": self.sha256,
               "size": self.size, "agent": self.agent}  # fmt: skip
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def decode(cls, data: bytes, source_sha256: str, target: PypiTarget) -> BuiltRecord | None:
        """The record, or None unless it is one for this source, python and platform whose
        wheel installs on the target."""
        try:
            doc = json.loads(data)
            record = cls(str(doc["source_sha256"]), str(doc["source_url"]), str(doc["python"]),
                         str(doc["platform"]), str(doc["filename"]), str(doc["sha256"]),
                         int(doc["size"]), str(doc["agent"]))  # fmt: skip
            package_key(record.sha256, record.filename)  # refuses a bad sha256 or filename
        except (ValueError, TypeError, KeyError, EnvdError):
            return None
        valid = (
            doc.get("schema") == BUILT_FORMAT
            and record.source_sha256 == source_sha256
            and record.python == python_tag(target)
            and record.platform == target.platform
            and wheel_rank(record.filename, target) is not None
        )
        return record if valid else None


def python_tag(target: PypiTarget) -> str:
    """`cp311` for python 3.11 (3.11.4 too)."""
    major, minor = target.python_version.split(".")[:2]
    return f"cp{major}{minor}"
