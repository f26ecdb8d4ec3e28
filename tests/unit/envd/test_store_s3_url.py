"""`s3://` store URLs: parsing, refusals, and the round trip through `open_store` (no network)."""

from __future__ import annotations

import pytest

from envd.errors import StoreError
from envd.store.s3 import S3Store
from envd.store.url import open_store


@pytest.mark.parametrize(
    ("url", "bucket", "prefix", "canonical"),
    [
        ("s3://envd-cache", "envd-cache", "", "s3://envd-cache"),
        ("s3://envd-cache/", "envd-cache", "", "s3://envd-cache"),
        ("s3://envd-cache/team", "envd-cache", "team", "s3://envd-cache/team"),
        ("s3://envd-cache/team/envd/", "envd-cache", "team/envd", "s3://envd-cache/team/envd"),
        ("S3://my.bucket_1/v1", "my.bucket_1", "v1", "s3://my.bucket_1/v1"),
    ],
)
def test_urls_name_a_bucket_and_an_optional_prefix(
    url: str, bucket: str, prefix: str, canonical: str
) -> None:
    store = S3Store.from_url(url)
    assert (store.bucket, store.prefix, store.url) == (bucket, prefix, canonical)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://", "failed to open store `s3://`: the bucket name is empty"),
        ("s3:///team", "failed to open store `s3:///team`: the bucket name is empty"),
        (
            "s3://key:secret@bucket/p",
            "failed to open store `s3://bucket/p`: the URL carries credentials or a query; "
            "they would be written to logs and state",
        ),
        (
            "s3://bucket/p?X-Amz-Signature=secret",
            "failed to open store `s3://bucket/p?…`: the URL carries credentials or a query; "
            "they would be written to logs and state",
        ),
        (
            "s3://bucket/a//b",
            "failed to open store `s3://bucket/a//b`: "
            "failed to use store key `a//b`: empty segment",
        ),
        (
            "s3://bucket/../up",
            "failed to open store `s3://bucket/../up`: "
            "failed to use store key `../up`: segment `..` starts with `.`",
        ),
        ("gs://bucket/p", "failed to open store `gs://bucket/p`: not an `s3://` URL"),
    ],
)
def test_malformed_urls_are_refused_with_a_hint(url: str, message: str) -> None:
    with pytest.raises(StoreError) as caught:
        S3Store.from_url(url)
    assert str(caught.value) == message
    assert caught.value.hint == "write the store URL as `s3://bucket` or `s3://bucket/some/prefix`"


@pytest.mark.parametrize("url", ["s3://b-1/p", "s3://b-1", "s3://b-1/team/envd"])
def test_open_store_round_trips_the_url(url: str) -> None:
    store = open_store(url)
    assert isinstance(store, S3Store)
    assert store.url == url
    assert open_store(store.url).url == url


def test_the_constructor_checks_what_from_url_checks() -> None:
    assert S3Store("b-1", "/team/").url == "s3://b-1/team"
    with pytest.raises(StoreError, match="failed to open store `s3://`: the bucket name is empty"):
        S3Store("")


@pytest.mark.parametrize(
    "url",
    [
        "s3://AKIAKEY:s3cr3tvalue@bucket/p",
        "gs://user:s3cr3tvalue@bucket/p",
        "az://account:s3cr3tvalue@envs/p",
        "az://envs/p?sv=2024-01-01&sig=s3cr3tvalue",
        "s3://bucket/p?X-Amz-Credential=s3cr3tvalue",
    ],
)
def test_credentials_in_a_store_url_never_reach_a_message(url: str) -> None:
    with pytest.raises(StoreError) as info:
        open_store(url)
    shown = f"{info.value.message} {info.value.hint}"
    assert "s3cr3tvalue" not in shown and "AKIAKEY" not in shown
    assert "carries credentials" in info.value.message
