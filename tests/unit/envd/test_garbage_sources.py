"""Garbage collection keeps the local sources a stored spec names (`envd-source://`), which a
`--force` re-resolve reads again, and removes old ones nothing names."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from envd.catalog import Catalog
from envd.description import ResolvedBy, ResolvedPackage, SolverInfo, build_description
from envd.garbage import collect_garbage
from envd.ids import req_id
from envd.spec import PypiDependency, Spec, source_url
from envd.store.layout import package_key
from envd.store.local import LocalStore

DAY = 86400.0


def test_sources_a_spec_names_stay_and_unnamed_old_ones_go(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    named, orphan = b"named sdist", b"orphan sdist"
    keys = []
    for data in (named, orphan):
        key = package_key(hashlib.sha256(data).hexdigest(), "mypkg-0.1.tar.gz")
        store.put_if_absent(key, data)
        past = time.time() - 2 * DAY
        os.utime(store.root / key, (past, past))
        keys.append(key)
    url = source_url(hashlib.sha256(named).hexdigest(), "mypkg-0.1.tar.gz")
    spec = Spec(pypi=(PypiDependency("mypkg", f"mypkg @ {url}"),), python="3.11.*")
    wheel = ResolvedPackage(
        kind="pypi", name="mypkg", version="0.1", build="", channel="https://pypi.org/simple",
        url="https://x.org/mypkg-0.1-py3-none-any.whl", filename="mypkg-0.1-py3-none-any.whl",
        sha256="b" * 64, md5=None, size=1, subdir="noarch",
    )  # fmt: skip
    doc = build_description(
        req_id=req_id(spec), platform="linux-64", spec=spec, packages=[wheel],
        resolved_at=datetime(2024, 5, 1, tzinfo=UTC), solver=SolverInfo("uv", "0.13"),
        resolved_by=ResolvedBy(user="ada", agent="agent-1", host="build-01"),
    )  # fmt: skip
    Catalog(store).write_description(doc)
    report = collect_garbage(store, now=time.time(), grace=DAY, dry_run=False)
    assert report.removed == (keys[1],)
    assert store.stat(keys[0]) is not None
