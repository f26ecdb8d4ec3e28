"""An environment written straight into a store from archive files, as an agent would write it
(archives, then a sealed description, then the default pointer) — or as a buggy or hostile
writer would, when a package's format names another archive."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from envd.catalog import Catalog
from envd.client.archive_contents import read_index
from envd.description import PackageFormat, ResolvedBy, ResolvedPackage, SolverInfo
from envd.description import build_description as build
from envd.ids import req_id
from envd.spec import CondaDependency, Spec
from envd.store.base import Store
from envd.store.layout import package_key

CHANNEL = "https://conda.example.invalid/fixtures"
WHEN = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def archived_package(path: Path, stored_as: Path | None = None) -> ResolvedPackage:
    """The package in the archive at `path`, its one format being the archive `stored_as`
    (by default itself)."""
    data = path.read_bytes()
    index = read_index(path)
    stored = stored_as or path
    return ResolvedPackage(
        kind="conda",
        name=index["name"],
        version=index["version"],
        build=index["build"],
        channel=CHANNEL,
        url=f"{CHANNEL}/{index['subdir']}/{path.name}",
        filename=path.name,
        sha256=_sha256(path),
        md5=hashlib.md5(data).hexdigest(),
        size=len(data),
        subdir=index["subdir"],
        depends=tuple(index.get("depends", ())),
        formats=(
            PackageFormat(
                format=".conda" if stored.name.endswith(".conda") else ".tar.bz2",
                filename=stored.name,
                sha256=_sha256(stored),
                size=stored.stat().st_size,
            ),
        ),
    )


def store_environment(
    store: Store, packages: list[ResolvedPackage], archives: list[Path], platform: str
) -> dict[str, Any]:
    """Put the archives, write the description and point the default at it; the description."""
    for path in archives:
        store.put_file_if_absent(package_key(_sha256(path), path.name), path)
    spec = Spec(
        conda=tuple(CondaDependency(name=p.name, spec=p.name) for p in packages),
        channels=(CHANNEL,),
    )
    doc = build(
        req_id=req_id(spec),
        platform=platform,
        spec=spec,
        packages=packages,
        resolved_at=WHEN,
        resolved_by=ResolvedBy(user="tester", agent="none", host="tests"),
        solver=SolverInfo(name="by-hand", version="0"),
    )
    catalog = Catalog(store)
    catalog.write_description(doc)
    catalog.set_default(doc["req_id"], platform, doc["full_id"], doc["resolved_at"])
    return doc


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
