"""AzureStore against a real Azurite: the shared conformance suite, plus failures only a
remote store has (interrupted uploads, a stopped server, a missing container)."""

from __future__ import annotations

import io
import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azure.storage.blob import ExponentialRetry

from envd.errors import StoreError
from envd.store.azure import BLOCK_SIZE, AzureStore, container_client
from envd.store.base import Store
from envd.store.url import open_store

# The suite lives beside the test folders; spawned racers inherit this sys.path entry.
_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from emulator_azure import Azurite, start_azurite  # noqa: E402
from store_conformance import StoreConformance  # noqa: E402

pytestmark = pytest.mark.integration
_containers = itertools.count()


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One emulator for the module; the environment points the SDK (and spawned racers) at it."""
    with (
        start_azurite(tmp_path_factory.mktemp("azurite")) as running,
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("AZURE_STORAGE_CONNECTION_STRING", running.connection_string)
        env.delenv("AZURE_STORAGE_ACCOUNT_URL", raising=False)
        env.delenv("AZURE_STORAGE_ACCOUNT", raising=False)
        yield running


@pytest.fixture
def container(azurite: Azurite) -> str:
    name = f"store-{next(_containers)}"
    azurite.create_container(name)
    return name


@pytest.fixture
def azure_store(container: str) -> Iterator[AzureStore]:
    """A fresh store under a prefix of a fresh container, as `open_store` builds it."""
    store = open_store(f"az://{container}/envd")
    assert isinstance(store, AzureStore)
    yield store
    store.close()


class TestAzureConformance(StoreConformance):
    @pytest.fixture
    def store(self, azure_store: AzureStore) -> Store:
        return azure_store


class _FailsAfterFirstBlock(io.BytesIO):
    """A source file whose disk vanishes once the first block has been read."""

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() >= BLOCK_SIZE:
            raise OSError("disk vanished")
        return super().read(size)


def test_an_interrupted_upload_leaves_no_blob_and_can_be_redone(
    azure_store: AzureStore, container: str, tmp_path: Path
) -> None:
    data = bytes(range(256)) * (3 * BLOCK_SIZE // 256)
    key = "pkgs/ff/big.conda"
    with pytest.raises(StoreError) as info:
        azure_store._publish_stream(key, _FailsAfterFirstBlock(data), len(data))
    assert info.value.message == (
        f"failed to write `az://{container}/envd/{key}`: reading the local file failed: "
        "disk vanished"
    )
    assert azure_store.stat(key) is None
    assert azure_store.get(key) is None
    assert azure_store.list("") == []
    # The staged blocks stay uncommitted; a second upload of the same key commits its own.
    # (Azurite, unlike Azure, would refuse a one-shot `If-None-Match: *` Put Blob over them,
    # but a key's bytes never change, so the retry is a block upload again.)
    source = tmp_path / "big.conda"
    source.write_bytes(data)
    assert azure_store.put_file_if_absent(key, source) is True
    assert azure_store.get(key) == data


def test_large_files_are_committed_as_blocks(azure_store: AzureStore, tmp_path: Path) -> None:
    source = tmp_path / "big.conda"
    source.write_bytes(b"x" * (2 * BLOCK_SIZE + 1))
    assert azure_store.put_file_if_absent("pkgs/aa/big.conda", source) is True
    blob = azure_store._blob("pkgs/aa/big.conda")
    committed, uncommitted = blob.get_block_list("all")
    assert [block.size for block in committed] == [BLOCK_SIZE, BLOCK_SIZE, 1]
    assert uncommitted == []


def test_a_stopped_store_is_retried_then_reported(
    tmp_path: Path, azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start_azurite(tmp_path) as down:
        down.create_container("down")
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", down.connection_string)
        quick = ExponentialRetry(
            initial_backoff=0, increment_base=0, retry_total=1, random_jitter_range=0
        )
        sleeps: list[float] = []
        store = AzureStore(
            container_client("down", retry_policy=quick), "p", attempts=3, sleep=sleeps.append
        )
        assert store.put_if_absent("k/v", b"x") is True
        down.stop()
        with pytest.raises(StoreError) as info:
            store.put_if_absent("k/w", b"y")
        store.close()
    assert info.value.message == (
        "failed to write `az://down/p/k/w` after 3 attempts: "
        f"HTTPConnection(host='127.0.0.1', port={down.port}): Failed to establish a new connection: [Errno 111] Connection refused"
    )
    assert info.value.hint is not None and "unreachable" in info.value.hint
    assert len(sleeps) == 2


def test_a_missing_container_is_named(azurite: Azurite) -> None:
    store = AzureStore.from_url("az://no-such-container/envd")
    calls: dict[str, Callable[[], object]] = {
        "write": lambda: store.put_if_absent("k/v", b"x"),
        "read": lambda: store.get("k/v"),
        "stat": lambda: store.stat("k/v"),
        "delete": lambda: store.delete("k/v"),
    }
    for verb, call in calls.items():
        with pytest.raises(StoreError) as info:
            call()
        assert info.value.message == (
            f"failed to {verb} `az://no-such-container/envd/k/v`: "
            "The specified container does not exist. (ContainerNotFound)"
        )
        assert info.value.hint == (
            "create the container `no-such-container` "
            "(`az storage container create --name no-such-container`)"
        )
    with pytest.raises(StoreError, match=r"failed to list `az://no-such-container/envd/k/`"):
        store.list("k/")
    store.close()


def test_the_prefix_confines_the_store(azurite: Azurite, container: str) -> None:
    outer = AzureStore.from_url(f"az://{container}")
    inner = AzureStore.from_url(f"az://{container}/team/envd")
    outer.put_if_absent("other/x", b"1")
    outer.put_if_absent("team/envd-old/y", b"2")
    inner.put_if_absent("pkgs/z", b"3")
    assert inner.list("") == ["pkgs/z"]
    assert outer.list("") == ["other/x", "team/envd-old/y", "team/envd/pkgs/z"]
    assert outer.get("team/envd/pkgs/z") == b"3"
    assert (outer.url, inner.url) == (f"az://{container}", f"az://{container}/team/envd")
    outer.close()
    inner.close()


def test_versions_are_etags(azure_store: AzureStore) -> None:
    version = azure_store.compare_and_swap("defaults/r/linux-64.json", None, b"1")
    props = azure_store._blob("defaults/r/linux-64.json").get_blob_properties()
    assert version == props.etag
