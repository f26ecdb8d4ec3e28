"""Reading uv's pylock.toml into the packages of one target."""

from __future__ import annotations

import pytest

from envd.agents.pylock import read_pylock
from envd.agents.pypi_target import pypi_target
from envd.errors import InternalError, PypiNotAvailableError

SHA = "a" * 64
INDEX = "https://pypi.org/simple"


def wheel(filename: str, sha: str = SHA) -> str:
    return (f'{{ url = "https://files.example/{filename}", size = 10, '
            f'hashes = {{ sha256 = "{sha}" }} }}')  # fmt: skip


LOCK = f"""
lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "Charset_Normalizer"
version = "3.5.3"
wheels = [
    {wheel("charset_normalizer-3.5.3-py3-none-any.whl", "b" * 64)},
    {wheel("charset_normalizer-3.5.3-cp311-cp311-macosx_10_9_universal2.whl", "c" * 64)},
]

[[packages]]
name = "certifi"
version = "2026.1"
wheels = [{wheel("certifi-2026.1-py3-none-any.whl")}]

[[packages]]
name = "pywin32"
version = "311"
marker = "sys_platform == 'win32'"
wheels = [{wheel("pywin32-311-cp311-cp311-win_amd64.whl")}]
"""


def test_best_wheel_for_the_target_sorted_by_name() -> None:
    packages = read_pylock(LOCK, pypi_target("osx-arm64", "3.11", {}), [INDEX])
    assert [(p.name, p.filename, p.sha256, p.subdir, p.channel) for p in packages] == [
        ("certifi", "certifi-2026.1-py3-none-any.whl", SHA, "noarch", INDEX),
        ("charset-normalizer", "charset_normalizer-3.5.3-cp311-cp311-macosx_10_9_universal2.whl",
         "c" * 64, "osx-arm64", INDEX),
    ]  # fmt: skip
    linux = read_pylock(LOCK, pypi_target("linux-64", "3.11", {}), [INDEX])
    assert linux[1].filename == "charset_normalizer-3.5.3-py3-none-any.whl"
    assert all(p.kind == "pypi" and p.build == "" and p.md5 is None for p in linux)


def test_packages_without_a_wheel_are_named_together() -> None:
    lock = """
[[packages]]
name = "crcmod"
version = "1.7"
sdist = { url = "https://files.example/crcmod-1.7.tar.gz", hashes = { sha256 = "%s" } }

[[packages]]
name = "winonly"
version = "1"
wheels = [{ url = "https://f/winonly-1-cp311-cp311-win_amd64.whl", hashes = { sha256 = "%s" } }]
""" % (SHA, SHA)  # noqa: UP031
    with pytest.raises(PypiNotAvailableError) as info:
        read_pylock(lock, pypi_target("linux-64", "3.11", {}), [INDEX])
    assert info.value.message == (
        "failed to resolve PyPI requirements for `linux-64`: packages `crcmod 1.7` (sdist "
        "only), `winonly 1` (no wheel for "
        "`x86_64-manylinux_2_17`, python 3.11) need a native build on an agent of `linux-64`: "
        "this resolver builds no wheels"
    )


def test_a_wheel_without_sha256_is_refused() -> None:
    lock = '[[packages]]\nname = "x"\nversion = "1"\nwheels = [{ url = "https://f/x-1-py3-none-any.whl" }]\n'
    with pytest.raises(InternalError, match=r"`x-1-py3-none-any\.whl` has no sha256"):
        read_pylock(lock, pypi_target("linux-64", "3.11", {}), [INDEX])
