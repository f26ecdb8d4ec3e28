"""`--find-links` for native builds: a package whose sdist and whose build backend are only on a
flat links page (the index has neither) resolves and builds with real uv — `uv pip compile`
reads its metadata and `uv build` installs setuptools, both from the page."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from envd.agents.fetch import Fetcher
from envd.agents.native_build import NativeBuilds
from envd.agents.pypi_resolver import PypiResolver
from envd.agents.resolver import ResolveRequest
from envd.spec import RawDependency, RawSpec, normalize_spec
from envd.store.local import LocalStore
from pypi_index import SETUPTOOLS_WHEEL, Sdist, Wheel, serve_find_links, serve_index

pytestmark = pytest.mark.integration


def test_sdist_and_build_backend_from_a_find_links_page_build_on_the_agent(
    tmp_path: Path,
) -> None:
    sdist = Sdist("envd-pure", "1.0")
    with (
        serve_index(tmp_path / "index", [Wheel("envd-app", "1.0")]) as index,
        serve_find_links(tmp_path / "links", [], [sdist], [SETUPTOOLS_WHEEL]) as (links, asked),
    ):
        spec = normalize_spec(RawSpec(pypi=[RawDependency("envd-pure")], python="3.11",
                                      pypi_indexes=[index.url], pypi_find_links=[links]))  # fmt: skip
        builds = NativeBuilds(
            LocalStore(tmp_path / "store"), Fetcher(attempts=1), tmp_path / "cache",
            agent_id="here", native_platform="linux-64", pythons={"3.11": sys.executable},
        )  # fmt: skip
        resolver = PypiResolver(tmp_path / "cache", attempts=1, builds=builds)
        resolution = asyncio.run(resolver.resolve(ResolveRequest(spec, "linux-64")))
    (package,) = resolution.packages
    assert package.filename == "envd_pure-1.0-py3-none-any.whl"
    assert package.built is not None and package.built.source == f"{links}{sdist.filename}"
    assert builds.built == 1
    assert f"/links/{SETUPTOOLS_WHEEL.name}" in asked
    assert not any(r.startswith("/files/") for r in index.requests)  # nothing from the index
