"""The stub index: conda versions as PEP 440, metadata-only wheels, the pages uv reads."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import urllib.request
import zipfile
from typing import Any

import pytest
from packaging.utils import parse_wheel_filename

from envd.agents.stub_index import (
    JSON_TYPE,
    STUB_UPLOAD_TIME,
    HeldPackage,
    pep440_version,
    serve_stubs,
    stub_filename,
    stub_wheel,
)

SIX = HeldPackage("six", "1.16.0", "six", "1.16.0")


@pytest.mark.parametrize(
    ("conda", "pep440"),
    [
        ("1.16.0", "1.16.0"),
        ("2024.02.02", "2024.2.2"),
        ("2.0.0rc1", "2.0.0rc1"),
        ("1!2.0", "1!2.0"),
        ("0.9_1", "0.9.1"),
        ("1.1.1w", "1.1.1+w"),
        ("9.5_p2", "9.5+p2"),
        ("1.0.0_beta_2", "1.0.0b2"),  # PEP 440 reads `beta` as a pre-release, as conda does
        ("stable", "0+stable"),
    ],
)
def test_conda_versions_as_pep440(conda: str, pep440: str) -> None:
    assert pep440_version(conda) == pep440


def test_a_stub_is_a_metadata_only_wheel_for_every_target() -> None:
    held = HeldPackage("typing-extensions", "4.9.0", "typing_extensions", "4.9.0")
    filename = stub_filename(held)
    assert filename == "typing_extensions-4.9.0-py3-none-any.whl"
    name, version, _, tags = parse_wheel_filename(filename)
    assert (name, str(version), [str(t) for t in tags]) == (
        "typing-extensions", "4.9.0", ["py3-none-any"]
    )  # fmt: skip
    with zipfile.ZipFile(io.BytesIO(stub_wheel(held))) as archive:
        assert sorted(archive.namelist()) == [
            "typing_extensions-4.9.0.dist-info/METADATA",
            "typing_extensions-4.9.0.dist-info/RECORD",
            "typing_extensions-4.9.0.dist-info/WHEEL",
        ]
        metadata = archive.read("typing_extensions-4.9.0.dist-info/METADATA").decode()
    assert metadata == (
        "Metadata-Version: 2.1\nName: typing-extensions\nVersion: 4.9.0\n"
        "Summary: provided by conda package typing_extensions 4.9.0\n"
    )
    assert "Requires-Dist" not in metadata  # conda satisfies its dependencies
    assert stub_wheel(held) == stub_wheel(held)  # byte for byte: the page's hash holds


def test_the_index_serves_held_names_only_and_stops() -> None:
    async def scenario() -> tuple[str, dict[str, Any], bytes, int]:
        async with serve_stubs([SIX]) as url:
            page = await asyncio.to_thread(_get, f"{url}/Six/")
            files = page["files"]
            assert isinstance(files, list)
            wheel = await asyncio.to_thread(_raw, files[0]["url"])
            missing = await asyncio.to_thread(_status, f"{url}/requests/")
        return url, page, wheel, missing

    url, page, wheel, missing = asyncio.run(scenario())
    (entry,) = page["files"]
    assert entry["filename"] == "six-1.16.0-py3-none-any.whl"
    assert entry["hashes"]["sha256"] == hashlib.sha256(wheel).hexdigest()
    assert entry["upload-time"] == STUB_UPLOAD_TIME and page["versions"] == ["1.16.0"]
    assert missing == 404
    with pytest.raises(OSError):  # closed when the block ends
        _status(f"{url}/six/")


def _get(url: str) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Accept": JSON_TYPE})
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.headers["Content-Type"] == JSON_TYPE
        assert answer.headers["Cache-Control"] == "no-store"
        doc: dict[str, Any] = json.loads(answer.read())
        return doc


def _raw(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as answer:
        data: bytes = answer.read()
        return data


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as err:
        return err.code
