"""The agent's side of a local source: the sdist the client packed (real `uv build`) is read
from the store, verified, and handed to uv as a file; the lock names exactly those bytes."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

import pytest

from envd.agents.pypi_resolver import PypiResolver
from envd.agents.pypi_target import pypi_target
from envd.agents.resolver import ResolveRequest
from envd.client.local_sources import pack_local_sources, upload_sources
from envd.errors import ArchiveIntegrityError
from envd.requirements_txt import requirement_text
from envd.spec import RawDependency, RawSpec, normalize_spec
from envd.store.local import LocalStore

pytestmark = pytest.mark.integration


def test_the_lock_names_the_stored_source_and_a_corrupt_copy_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "mypkg"
    (project / "src" / "mypkg").mkdir(parents=True)
    (project / "src" / "mypkg" / "__init__.py").write_text("X = 1\n")
    (project / "pyproject.toml").write_text(
        '[project]\nname = "mypkg"\nversion = "0.1"\n[build-system]\n'
        'requires = ["uv_build>=0.8,<0.14"]\nbuild-backend = "uv_build"\n'
    )
    raw = RawSpec(pypi=[RawDependency(requirement_text("./mypkg", "test", tmp_path))],
                  python="3.11", pypi_indexes=["http://127.0.0.1:9/simple"])  # fmt: skip
    (tmp_path / "scratch").mkdir()
    packed = pack_local_sources(normalize_spec(raw), tmp_path / "scratch")
    store = LocalStore(tmp_path / "store")
    upload_sources(packed.sources, store)
    (source,) = packed.sources
    resolver = PypiResolver(tmp_path / "cache", store=store, attempts=1)
    target = pypi_target("linux-64", packed.spec.python, {})
    requirements = packed.spec.pypi_requirements_for("linux-64")
    lock = asyncio.run(
        resolver._compile_with_retries(target, requirements, ["http://127.0.0.1:9/simple"], None)
    )
    (entry,) = tomllib.loads(lock)["packages"]
    assert (entry["name"], entry["version"]) == ("mypkg", "0.1")
    assert entry["archive"]["hashes"]["sha256"] == source.sha256
    assert entry["archive"]["path"].endswith(f"/sources/{source.sha256}/mypkg-0.1.tar.gz")
    stored = store.root / source.key
    stored.chmod(0o644)
    stored.write_bytes(b"not the packed sdist")
    with pytest.raises(ArchiveIntegrityError, match=r"failed to verify local source `mypkg-0\.1"):
        asyncio.run(resolver.resolve(ResolveRequest(packed.spec, "linux-64")))
