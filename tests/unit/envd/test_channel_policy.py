"""The coordinator's channel policy and the archive-URL rule agents apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.channel_policy import ChannelPolicy, check_archive_url, spec_channels
from envd.errors import ChannelNotAllowedError, InvalidSpecError
from envd.locks import LockedPackage, LockedPlatform, channel_of, index_of
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec


def test_default_allows_web_channels_and_names_but_no_local_ones(tmp_path: Path) -> None:
    policy = ChannelPolicy()
    for channel in ("conda-forge", "https://conda.example.com/private", "http://10.0.0.1:8080/c"):
        policy.check(channel)
    for channel in (tmp_path.as_uri(), "file:///etc"):
        with pytest.raises(ChannelNotAllowedError) as info:
            policy.check(channel)
        assert info.value.message == (
            f"channel `{channel}` is not allowed by this coordinator: local channels are only "
            "allowed under the directories the coordinator lists (`--allow-local-channels`)"
        )
    with pytest.raises(ChannelNotAllowedError, match="`ftp` is not a channel scheme"):
        policy.check("ftp://example.com/c")


def test_local_channels_only_under_listed_dirs(tmp_path: Path) -> None:
    allowed = tmp_path / "channels"
    (allowed / "mine").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (allowed / "escape").symlink_to(tmp_path / "elsewhere")
    policy = ChannelPolicy.of(local_dirs=[allowed])
    policy.check((allowed / "mine").as_uri())
    policy.check(allowed.as_uri())
    for outside in (tmp_path / "elsewhere", allowed / "escape", allowed / "mine" / ".." / ".."):
        with pytest.raises(ChannelNotAllowedError):
            policy.check(f"file://{outside}")
    ChannelPolicy.of(any_local=True).check("file:///anything")


def test_allow_patterns_match_names_or_urls() -> None:
    policy = ChannelPolicy.of(["https://conda.example.com/*", "bioconda"])
    policy.check("https://conda.example.com/private")
    policy.check("bioconda")
    with pytest.raises(ChannelNotAllowedError, match="matches no `--allow-channel` pattern"):
        policy.check("conda-forge")
    with pytest.raises(ChannelNotAllowedError):
        policy.check("https://evil.example.com/private")


def test_spec_channels_include_package_channels() -> None:
    spec = normalize_spec(RawSpec(
        conda=[RawDependency("aaa"), RawDependency("conda-forge::numpy>=1"),
               RawDependency("file:///etc/x::zlib"),
               RawDependency("http://h:81/c::xz"), RawDependency("python")],
        channels=["bioconda"],
    ))  # fmt: skip
    assert sorted(spec_channels(spec)) == [
        "bioconda",
        "conda-forge",
        "file:///etc/x",
        "http://h:81/c",
    ]


def test_credentials_in_a_package_channel_are_refused_without_echoing_them() -> None:
    with pytest.raises(InvalidSpecError) as info:
        normalize_spec(RawSpec(conda=[RawDependency("http://user:PW@host/ch::python")]))
    assert "PW" not in info.value.message and "user" not in info.value.message
    assert info.value.message.startswith("channel URL `http://host/…` carries credentials")


@pytest.mark.parametrize(
    ("channel", "url", "ok"),
    [
        ("https://c.example.com/cf", "https://c.example.com/cf/linux-64/a.conda", True),
        ("https://c.example.com/cf", "https://other.example.com/a.conda", False),
        ("https://c.example.com/cf", "http://c.example.com/cf/linux-64/a.conda", False),
        ("https://c.example.com/cf", "https://c.example.com:444/cf/a.conda", False),
        ("https://c.example.com/cf", "file:///etc/passwd", False),
        ("file:///srv/chan", "file:///srv/chan/linux-64/a.conda", True),
        ("file:///srv/chan", "file:///srv/chan/../secret/a.conda", False),
        ("file:///srv/chan", "file:///etc/passwd", False),
        ("file:///srv/chan", "https://evil.example.com/srv/chan/a.conda", False),
    ],
)
def test_archive_urls_stay_in_their_channel(channel: str, url: str, ok: bool) -> None:
    if ok:
        check_archive_url(channel, url)
    else:
        with pytest.raises(ChannelNotAllowedError, match="points outside the channel"):
            check_archive_url(channel, url)


def test_paths_the_system_refuses_are_refused_not_raised(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    policy = ChannelPolicy.of(local_dirs=[tmp_path / "allowed"])
    for url in (loop.as_uri(), f"file://{tmp_path}/{'n' * 300}"):
        with pytest.raises(ChannelNotAllowedError):
            policy.check(url)


def _locked(*urls: str) -> Spec:
    """A lock's spec (built as the daemon decodes one) with a package per URL: conda archives
    (`.conda`) and PyPI files (`.whl`)."""
    packages = []
    for index, url in enumerate(urls):
        conda = url.endswith(".conda")
        subdir = url.rsplit("/", 2)[-2] if conda else "linux-64"
        packages.append(LockedPackage(
            kind="conda" if conda else "pypi", name=f"p{index}", version="1.0",
            build="0" if conda else "", url=url, filename=url.rsplit("/", 1)[-1],
            sha256="a" * 64, md5=None, size=None, depends=(),
            channel=channel_of(url, subdir) if conda else index_of(url), subdir=subdir,
        ))  # fmt: skip
    return Spec(locked=(LockedPlatform("linux-64", tuple(packages)),))


def test_every_url_of_a_lock_is_checked(tmp_path: Path) -> None:
    forge = "https://conda.anaconda.org/conda-forge"
    wheel = "https://files.pythonhosted.org/packages/aa/bb/p-1.0-py3-none-any.whl"
    policy = ChannelPolicy.of(allow=[forge], allow_pypi=["https://pypi.corp.example/*"])
    policy.check_locked(_locked(f"{forge}/noarch/p-1.0-0.conda"))
    with pytest.raises(ChannelNotAllowedError) as info:
        policy.check_locked(_locked(f"{forge}/noarch/p-1.0-0.conda", wheel))
    assert info.value.message == (
        f"locked PyPI file `{wheel}` is not allowed by this coordinator: it matches no "
        "`--allow-pypi-index` pattern of the coordinator (`https://pypi.corp.example/*`)"
    )
    other = "https://user:s3cret@conda.example.com/private/linux-64/p-1.0-0.conda"
    with pytest.raises(ChannelNotAllowedError) as info:
        policy.check_locked(_locked(other))
    assert info.value.reference == "E205"
    assert info.value.message == (
        "locked package URL `https://user:***@conda.example.com/private/linux-64/p-1.0-0.conda` "
        "is not allowed by this coordinator: its channel `https://user:***@conda.example.com/"
        "private` is not allowed: it matches no `--allow-channel` pattern of the coordinator"
    )
    walk = f"{forge}/../private/linux-64/p-1.0-0.conda"
    with pytest.raises(ChannelNotAllowedError, match=r"has `\.` or `\.\.` segments"):
        policy.check_locked(_locked(walk))
    outside = (tmp_path / "elsewhere" / "linux-64" / "p-1.0-0.conda").as_uri()
    with pytest.raises(ChannelNotAllowedError, match="local channels are only allowed"):
        ChannelPolicy.of(local_dirs=[tmp_path / "allowed"]).check_locked(_locked(outside))


def test_a_locks_packages_after_a_pypi_file_are_checked_too() -> None:
    forge = "https://conda.anaconda.org/conda-forge"
    wheel = "https://files.pythonhosted.org/packages/aa/bb/p-1.0-py3-none-any.whl"
    other = "https://conda.example.com/private/linux-64/p-1.0-0.conda"
    policy = ChannelPolicy.of(allow=[forge])  # PyPI files: the default policy allows them
    policy.check_locked(_locked(wheel, f"{forge}/noarch/p-1.0-0.conda"))
    with pytest.raises(ChannelNotAllowedError, match=r"conda\.example\.com/private"):
        policy.check_locked(_locked(wheel, other))
