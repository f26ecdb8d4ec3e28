"""The channel policy for PyPI locations (indexes, find-links, direct URLs), and specs that
refuse credentials in them."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.channel_policy import ChannelPolicy, pypi_locations
from envd.errors import ChannelNotAllowedError, InvalidSpecError
from envd.spec import RawDependency, RawSpec, Spec, normalize_spec

SHA = "a" * 64


def spec(*requirements: str, indexes: tuple[str, ...] = ()) -> Spec:
    return normalize_spec(
        RawSpec(pypi=[RawDependency(r) for r in requirements], pypi_indexes=list(indexes))
    )


def refusal(policy: ChannelPolicy, value: Spec) -> str:
    with pytest.raises(ChannelNotAllowedError) as refused:
        policy.check_pypi_spec(value)
    assert refused.value.reference == "E205"
    return refused.value.message


def test_locations_are_the_indexes_or_pypi_and_every_direct_url() -> None:
    assert pypi_locations(spec()) == []
    assert pypi_locations(spec("requests")) == [("PyPI index", "https://pypi.org/simple")]
    both = spec("a @ https://x.org/a-1.0.tar.gz", "b", indexes=("https://i.example/simple",))
    assert pypi_locations(both) == [
        ("PyPI index", "https://i.example/simple"),
        ("requirement URL", "https://x.org/a-1.0.tar.gz"),
    ]


def test_default_policy_allows_web_urls_and_packed_sources_but_no_local_files(
    tmp_path: Path,
) -> None:
    policy = ChannelPolicy()
    policy.check_pypi_spec(spec("a @ git+https://github.com/o/a@v1", "b @ https://x.org/b.whl"))
    policy.check_pypi_spec(spec(f"c @ envd-source://sha256/{SHA}/c-1.0.tar.gz"))
    local = (tmp_path / "c-1.0.tar.gz").as_uri()
    assert refusal(policy, spec(f"c @ {local}")) == (
        f"requirement URL `{local}` is not allowed by this coordinator: local files are only "
        "allowed under the directories the coordinator lists (`--allow-local-channels`)"
    )
    ChannelPolicy.of(local_dirs=[tmp_path]).check_pypi_spec(spec(f"c @ {local}"))
    assert refusal(policy, spec("d @ git+ssh://git@github.com/o/d")) == (
        "requirement URL `git+ssh://git@github.com/o/d` is not allowed by this coordinator: "
        "`git+ssh` is not an http(s) URL"
    )
    assert "`ftp` is not an http(s) URL" in refusal(
        policy, spec("e", indexes=("ftp://mirror.example/simple",))
    )


def test_patterns_restrict_indexes_and_urls_and_the_refusal_names_them() -> None:
    policy = ChannelPolicy.of(allow_pypi=["https://pypi.corp.example/*"])
    policy.check_pypi_spec(spec("a", indexes=("https://pypi.corp.example/simple",)))
    policy.check_pypi_spec(spec("a @ git+https://pypi.corp.example/git/a@v1",
                                indexes=("https://pypi.corp.example/simple",)))  # fmt: skip
    assert refusal(policy, spec("a")) == (
        "PyPI index `https://pypi.org/simple` is not allowed by this coordinator: it matches no "
        "`--allow-pypi-index` pattern of the coordinator (`https://pypi.corp.example/*`)"
    )
    mixed = spec("a @ https://evil.example/a.whl", indexes=("https://pypi.corp.example/simple",))
    assert refusal(policy, mixed).startswith("requirement URL `https://evil.example/a.whl` is")
    policy.check_pypi_spec(spec())  # no PyPI dependencies: nothing is fetched from PyPI


def test_credentials_in_index_or_requirement_urls_are_refused_masked() -> None:
    with pytest.raises(InvalidSpecError) as index:
        spec("a", indexes=("https://alice:s3cret@pypi.corp.example/simple",))
    assert index.value.message == (
        "PyPI index URL `https://alice:***@pypi.corp.example/simple` carries credentials; they "
        "would be written into ids, state, descriptions and logs"
    )
    assert index.value.hint is not None and "netrc" in index.value.hint
    with pytest.raises(InvalidSpecError) as token:
        spec("a @ https://tok3n@files.example/a-1.0-py3-none-any.whl")
    assert "tok3n" not in token.value.message
    assert token.value.message.startswith(
        "PyPI requirement URL `https://***@files.example/a-1.0-py3-none-any.whl` at <inline> "
        "carries credentials"
    )
    assert spec("a @ git+ssh://git@github.com/o/a").pypi[0].requirement == (
        "a @ git+ssh://git@github.com/o/a"
    )


def test_find_links_are_locations_the_policy_checks() -> None:
    linked = normalize_spec(
        RawSpec(pypi=[RawDependency("foo")], pypi_find_links=["https://evil.example/links/"])
    )
    assert pypi_locations(linked) == [
        ("PyPI index", "https://pypi.org/simple"),
        ("find-links location", "https://evil.example/links/"),
    ]
    policy = ChannelPolicy.of(allow_pypi=["https://pypi.org/*"])
    assert refusal(policy, linked) == (
        "find-links location `https://evil.example/links/` is not allowed by this coordinator: "
        "it matches no `--allow-pypi-index` pattern of the coordinator (`https://pypi.org/*`)"
    )
    ChannelPolicy.of(allow_pypi=["https://pypi.org/*", "https://evil.example/*"]).check_pypi_spec(
        linked
    )
