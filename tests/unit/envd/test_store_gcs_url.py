"""GcsStore without a network: URLs, their round trip, client configuration, retry decisions."""

from __future__ import annotations

import warnings

import pytest
import requests

from envd.errors import StoreError
from envd.store.url import open_store

with warnings.catch_warnings():
    # google-api-core warns at import that grpcio-status is absent; it only improves gRPC
    # error messages, and this SDK talks JSON over HTTP.
    warnings.filterwarnings("ignore", "Please install grpcio-status", ImportWarning)
    from google.api_core import exceptions as api_exceptions
    from google.auth.credentials import AnonymousCredentials

    from envd.store.gcs import EMULATOR_ENV, GcsStore, is_transient

# Nothing listens here; building a client makes no request, so no test below touches it.
UNUSED_ENDPOINT = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EMULATOR_ENV, UNUSED_ENDPOINT)


@pytest.mark.parametrize(
    ("url", "bucket", "prefix", "canonical"),
    [
        ("gs://envd-store", "envd-store", "", "gs://envd-store"),
        ("gs://envd-store/", "envd-store", "", "gs://envd-store"),
        ("gs://envd-store/team", "envd-store", "team", "gs://envd-store/team"),
        ("gs://envd-store/team/envd/v1/", "envd-store", "team/envd/v1", "gs://envd-store/team/envd/v1"),
        ("GS://my.bucket_1/p", "my.bucket_1", "p", "gs://my.bucket_1/p"),
    ],
)  # fmt: skip
def test_from_url_reads_bucket_and_prefix_and_url_round_trips(
    url: str, bucket: str, prefix: str, canonical: str
) -> None:
    store = GcsStore.from_url(url)
    assert (store.bucket, store.prefix, store.url) == (bucket, prefix, canonical)
    reopened = open_store(store.url)
    assert isinstance(reopened, GcsStore)
    assert (reopened.bucket, reopened.prefix, reopened.url) == (bucket, prefix, canonical)


@pytest.mark.parametrize(
    "url", ["gs://", "gs:///prefix", "gs://ab", "gs://Upper", "gs://-dash", "gs://a..b", "gs://a b"]
)
def test_bad_bucket_names_are_refused(url: str) -> None:
    with pytest.raises(StoreError, match=r"^failed to open store `gs://.*` is not a bucket name"):
        open_store(url)


@pytest.mark.parametrize("prefix", ["a//b", "../up", "a/./b", ".hidden", "a/.b"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(StoreError) as info:
        open_store(f"gs://envd-store/{prefix}")
    assert info.value.message == (
        f"failed to open store `gs://envd-store/{prefix}`: `{prefix}` is not a prefix"
    )
    assert info.value.hint is not None
    assert info.value.hint.startswith(
        "write the store URL as `gs://bucket` or `gs://bucket/prefix`; "
    )


def test_from_url_refuses_other_schemes() -> None:
    with pytest.raises(StoreError) as info:
        GcsStore.from_url("s3://envd-store/p")
    assert info.value.message == "failed to open store `s3://envd-store/p`: not a `gs://` URL"


def test_an_emulator_gets_anonymous_credentials() -> None:
    store = GcsStore.from_url("gs://envd-store")
    client = store._client
    assert isinstance(client._credentials, AnonymousCredentials)
    assert client._connection.API_BASE_URL == UNUSED_ENDPOINT


def test_missing_credentials_are_a_store_error_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EMULATOR_ENV)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/envd-key.json")
    with pytest.raises(StoreError) as info:
        open_store("gs://envd-store/p")
    assert info.value.message.startswith(
        "failed to open store `gs://envd-store/p`: no Google Cloud credentials: "
    )
    assert info.value.hint is not None
    assert "gcloud auth application-default login" in info.value.hint


def http_error(status: int) -> BaseException:
    """The exception the SDK raises for an HTTP status (api_core's factory is unannotated)."""
    err: BaseException = api_exceptions.from_http_status(status, "reason")  # type: ignore[no-untyped-call]
    return err


@pytest.mark.parametrize(
    ("err", "transient"),
    [
        *[(http_error(status), True) for status in (408, 429, 500, 502, 503, 504)],
        *[(http_error(status), False) for status in (400, 401, 403, 404, 409, 412)],
        (requests.ConnectionError("refused"), True),
        (requests.Timeout("read timed out"), True),
        (ConnectionResetError("reset"), True),
        (FileNotFoundError("local"), False),
        (ValueError("bug"), False),
    ],
)
def test_only_throttling_server_errors_and_dropped_connections_are_retried(
    err: BaseException, transient: bool
) -> None:
    assert is_transient(err) is transient
