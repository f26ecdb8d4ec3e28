"""`az://` store URLs and the Azure client configuration, without any network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.identity import DefaultAzureCredential

from envd.errors import StoreError
from envd.store.azure import AzureStore, container_client, parse_url
from envd.store.url import open_store

_KEY = "a2V5"  # any base64 will do: building a client sends nothing
_CONNECTION_STRING = (
    f"DefaultEndpointsProtocol=http;AccountName=acct;AccountKey={_KEY};"
    "BlobEndpoint=http://127.0.0.1:9/acct;"
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No Azure configuration from the environment the tests run in."""
    for name in (
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_STORAGE_ACCOUNT_URL",
        "AZURE_STORAGE_ACCOUNT",
    ):
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch


@pytest.mark.parametrize(
    ("url", "container", "prefix", "canonical"),
    [
        ("az://envs", "envs", "", "az://envs"),
        ("az://envs/", "envs", "", "az://envs"),
        ("az://envs/envd", "envs", "envd", "az://envs/envd"),
        ("az://my-envs-2/team/envd/", "my-envs-2", "team/envd", "az://my-envs-2/team/envd"),
        ("AZ://envs/Team", "envs", "Team", "az://envs/Team"),
    ],
)
def test_urls_parse_and_round_trip(
    env: pytest.MonkeyPatch, url: str, container: str, prefix: str, canonical: str
) -> None:
    env.setenv("AZURE_STORAGE_CONNECTION_STRING", _CONNECTION_STRING)
    assert parse_url(url) == (container, prefix)
    store = open_store(url)
    assert isinstance(store, AzureStore)
    assert store.url == canonical
    assert open_store(store.url).url == canonical
    store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("az://", "failed to open store `az://`: `` is not a container name"),
        ("az://Envs/x", "failed to open store `az://Envs/x`: `Envs` is not a container name"),
        ("az://ab", "failed to open store `az://ab`: `ab` is not a container name"),
        ("az://a--b", "failed to open store `az://a--b`: `a--b` is not a container name"),
        ("az://-ab", "failed to open store `az://-ab`: `-ab` is not a container name"),
        (
            "az://account:key@envs/x",
            "failed to open store `az://envs/x`: the URL carries credentials or a query; "
            "they would be written to logs and state",
        ),
        (
            "az://envs:10000/x",
            "failed to open store `az://envs:10000/x`: `envs:10000` is not a container name",
        ),
        (
            "az://envs/x?sv=2024&sig=secret",
            "failed to open store `az://envs/x?…`: the URL carries credentials or a query; "
            "they would be written to logs and state",
        ),
        (
            "az://envs/a//b",
            "failed to open store `az://envs/a//b`: the prefix `a//b` is not a key path",
        ),
        (
            "az://envs/.cache",
            "failed to open store `az://envs/.cache`: the prefix `.cache` is not a key path",
        ),
    ],
)
def test_malformed_urls_are_refused(env: pytest.MonkeyPatch, url: str, message: str) -> None:
    env.setenv("AZURE_STORAGE_CONNECTION_STRING", _CONNECTION_STRING)
    with pytest.raises(StoreError) as info:
        open_store(url)
    assert info.value.message == message
    assert info.value.hint is not None


def test_another_scheme_is_not_an_azure_url() -> None:
    with pytest.raises(StoreError) as info:
        AzureStore.from_url("s3://envs/x")
    assert info.value.message == "failed to open store `s3://envs/x`: not an `az://` URL"
    assert info.value.hint == "write the store URL as `az://<container>/<optional/prefix>`"


def test_a_connection_string_wins(env: pytest.MonkeyPatch) -> None:
    env.setenv("AZURE_STORAGE_CONNECTION_STRING", _CONNECTION_STRING)
    env.setenv("AZURE_STORAGE_ACCOUNT", "other")
    client = container_client("envs")
    assert client.url == "http://127.0.0.1:9/acct/envs"
    assert client.account_name == "acct"
    client.close()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AZURE_STORAGE_ACCOUNT_URL", "https://acct.blob.core.windows.net"),
        ("AZURE_STORAGE_ACCOUNT", "acct"),
    ],
)
def test_an_account_uses_the_default_credential_chain(
    env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    env.setenv(name, value)
    client = container_client("envs")
    assert client.url == "https://acct.blob.core.windows.net/envs"
    assert isinstance(client.credential, DefaultAzureCredential)
    client.close()
    client.credential.close()


def test_no_account_configured_is_reported(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(StoreError) as info:
        open_store("az://envs/x")
    assert info.value.message == (
        "failed to open store `az://envs`: no Azure storage account is configured"
    )
    assert info.value.hint is not None
    assert "AZURE_STORAGE_CONNECTION_STRING" in info.value.hint


def test_a_malformed_connection_string_is_reported(env: pytest.MonkeyPatch) -> None:
    env.setenv("AZURE_STORAGE_CONNECTION_STRING", "not a connection string")
    with pytest.raises(StoreError, match=r"^failed to open store `az://envs`: "):
        open_store("az://envs")
