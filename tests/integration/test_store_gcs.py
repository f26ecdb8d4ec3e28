"""GcsStore against a real fake-gcs-server: the shared conformance suite, then what only GCS shows.

fake-gcs-server gaps, worked around here and never in the backend:
- It ignores `ifGenerationMatch` on resumable uploads (files over 8 MiB, which the SDK sends
  in chunks): a second create-only upload replaces the object. Create-only is asserted on
  small files, which go up in one request where the emulator honours the precondition;
  `test_the_emulator_still_ignores_preconditions_on_resumable_uploads` fails once that changes.
- Its error bodies are terse: a missing bucket is "Not Found" where GCS says "The specified
  bucket does not exist.", so the missing-bucket test pins the emulator's wording. Both answer
  a read in a missing bucket with 404, like a missing object: reads see absent objects, and
  writes and `list` name the bucket.
"""

from __future__ import annotations

import io
import logging
import secrets
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator_gcs import FakeGcs, start_fake_gcs
from envd.errors import StoreError
from envd.store.base import Store
from envd.store.url import open_store
from store_conformance import StoreConformance

with warnings.catch_warnings():
    # google-api-core warns at import that grpcio-status is absent; it only improves gRPC
    # error messages, and this SDK talks JSON over HTTP.
    warnings.filterwarnings("ignore", "Please install grpcio-status", ImportWarning)
    from google.api_core import exceptions as api_exceptions
    from google.cloud.storage import Client

    from envd.store.gcs import EMULATOR_ENV, SINGLE_REQUEST_LIMIT, GcsStore

pytestmark = pytest.mark.integration
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGcs]:
    """One emulator for the module; STORAGE_EMULATOR_HOST is in os.environ while it runs, so
    the conformance racers (spawned processes) reach it through `open_store(url)` alone."""
    with (
        start_fake_gcs(tmp_path_factory.mktemp("fake-gcs")) as server,
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv(EMULATOR_ENV, server.endpoint)
        yield server


def fresh_bucket(server: FakeGcs) -> str:
    name = f"envd-{secrets.token_hex(6)}"
    server.create_bucket(name)
    return name


def sdk_client() -> Client:
    """A bare SDK client on the emulator, to look at objects behind the store's back."""
    return Client.create_anonymous_client()


class TestGcsConformance(StoreConformance):
    @pytest.fixture
    def store(self, fake_gcs: FakeGcs) -> Store:
        # A fresh bucket per test, and a prefix so every call goes through the name mapping.
        return GcsStore.from_url(f"gs://{fresh_bucket(fake_gcs)}/store/v1")

    def test_put_file_if_absent_streams_and_is_create_only(
        self, store: Store, tmp_path: Path
    ) -> None:
        """The suite's 10 MiB file goes up as a resumable upload, where fake-gcs-server ignores
        `ifGenerationMatch`. The round trip and size run on it as in the suite; a second put of
        it is refused by the backend's look-before-upload, and the create-only precondition
        itself is asserted on small files, which the emulator checks (one-request uploads)."""
        big = tmp_path / "big.conda"
        with big.open("wb") as f:
            for i in range(10):
                f.write(bytes([i]) * MiB)
        assert store.put_file_if_absent("pkgs/cc/big.conda", big) is True
        assert store.put_file_if_absent("pkgs/cc/big.conda", big) is False
        info = store.stat("pkgs/cc/big.conda")
        assert info is not None and info.size == 10 * MiB
        dest = tmp_path / "out" / "big.conda"
        dest.parent.mkdir()
        assert store.download("pkgs/cc/big.conda", dest) is True
        assert dest.read_bytes() == big.read_bytes()
        assert sorted(p.name for p in dest.parent.iterdir()) == ["big.conda"]

        small = tmp_path / "small.conda"
        small.write_bytes(b"first")
        other = tmp_path / "other"
        other.write_bytes(b"different")
        assert store.put_file_if_absent("pkgs/cc/small.conda", small) is True
        assert store.put_file_if_absent("pkgs/cc/small.conda", other) is False
        assert store.get("pkgs/cc/small.conda") == b"first"


# what only GCS shows


def test_objects_live_under_the_prefix_and_the_url_round_trips(fake_gcs: FakeGcs) -> None:
    bucket = fresh_bucket(fake_gcs)
    store = GcsStore.from_url(f"gs://{bucket}/envd/v1")
    root = GcsStore.from_url(f"gs://{bucket}")
    assert store.put_if_absent("pkgs/ab/x.conda", b"archive")
    assert root.list("") == ["envd/v1/pkgs/ab/x.conda"]
    assert root.get("envd/v1/pkgs/ab/x.conda") == b"archive"
    reopened = open_store(store.url)
    assert isinstance(reopened, GcsStore)
    assert (reopened.url, reopened.bucket, reopened.prefix) == (store.url, bucket, "envd/v1")
    assert reopened.list("pkgs/") == ["pkgs/ab/x.conda"]


def test_the_version_is_the_objects_generation(fake_gcs: FakeGcs) -> None:
    bucket = fresh_bucket(fake_gcs)
    store = GcsStore(bucket)
    version = store.compare_and_swap("defaults/r/linux-64.json", None, b"{}")
    blob = sdk_client().bucket(bucket).get_blob("defaults/r/linux-64.json")
    assert blob is not None and version == str(blob.generation)
    with pytest.raises(StoreError, match="found another version or none"):
        store.compare_and_swap("defaults/r/linux-64.json", "not-a-generation", b"{}")


def test_list_skips_names_that_are_not_keys(fake_gcs: FakeGcs) -> None:
    bucket = fresh_bucket(fake_gcs)
    store = GcsStore(bucket, "s")
    store.put_if_absent("envs/r/a.json", b"{}")
    sdk_bucket = sdk_client().bucket(bucket)
    for name in ["s/envs/", "s/envs/.hidden", "s/envs/r//b.json", "other/envs/c.json"]:
        sdk_bucket.blob(name).upload_from_string(b"")  # e.g. the console's folder placeholders
    assert store.list("") == ["envs/r/a.json"]


def test_a_large_file_is_uploaded_in_chunks_and_read_back(
    fake_gcs: FakeGcs, tmp_path: Path
) -> None:
    bucket = fresh_bucket(fake_gcs)
    store = GcsStore(bucket, upload_chunk=MiB)
    big = tmp_path / "big.conda"
    big.write_bytes(secrets.token_bytes(SINGLE_REQUEST_LIMIT + 3 * MiB + 5))
    assert store.put_file_if_absent("pkgs/ff/big.conda", big)
    uploads = [
        line
        for line in fake_gcs.log().splitlines()
        if f"/b/{bucket}/o?uploadType=resumable" in line
    ]
    assert len(uploads) == 1 + 12  # the session, then one request per chunk
    dest = tmp_path / "copy.conda"
    assert store.download("pkgs/ff/big.conda", dest)
    assert dest.read_bytes() == big.read_bytes()


def test_a_download_into_a_missing_folder_is_a_store_error(
    fake_gcs: FakeGcs, tmp_path: Path
) -> None:
    store = GcsStore(fresh_bucket(fake_gcs))
    store.put_if_absent("pkgs/gg/x.conda", b"x")
    with pytest.raises(StoreError) as info:
        store.download("pkgs/gg/x.conda", tmp_path / "missing" / "x.conda")
    assert info.value.message.startswith("failed to download `gs://")
    assert info.value.message.endswith(
        "/pkgs/gg/x.conda` to `"
        + str(tmp_path / "missing" / "x.conda")
        + "`: No such file or directory"
    )


def test_the_emulator_still_ignores_preconditions_on_resumable_uploads(fake_gcs: FakeGcs) -> None:
    """The gap the conformance override works around (see the module docstring). When this
    fails, fake-gcs-server honours the precondition: drop the override."""
    blob = sdk_client().bucket(fresh_bucket(fake_gcs)).blob("x", chunk_size=MiB)
    for fill in (b"a", b"b"):
        blob.upload_from_file(io.BytesIO(fill * 9 * MiB), size=9 * MiB, if_generation_match=0)
    assert blob.download_as_bytes()[:1] == b"b"
    with pytest.raises(api_exceptions.PreconditionFailed):  # one-request uploads are checked
        blob.upload_from_string(b"small", if_generation_match=0)


def test_a_missing_bucket_is_named_by_writes_and_lists(fake_gcs: FakeGcs) -> None:
    store = GcsStore("envd-no-such-bucket", "p")
    with pytest.raises(StoreError) as info:
        store.put_if_absent("k/v", b"x")
    assert info.value.message == (
        "failed to write `gs://envd-no-such-bucket/p/k/v`: HTTP 404 Not Found: Not Found"
    )
    assert info.value.hint == "check that bucket `envd-no-such-bucket` exists"
    with pytest.raises(StoreError, match=r"failed to list `gs://envd-no-such-bucket/p/envs/`"):
        store.list("envs/")
    assert store.get("k/v") is None  # GCS answers reads with the same 404 as a missing object


def test_a_stopped_store_is_retried_then_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with start_fake_gcs(tmp_path) as server:
        server.create_bucket("envd-down")
        monkeypatch.setenv(EMULATOR_ENV, server.endpoint)
        store = GcsStore("envd-down", "p", attempts=3, base_delay=0.01)
        assert store.put_if_absent("k/v", b"x")
        server.stop()
        with (
            caplog.at_level(logging.WARNING, logger="envd.store"),
            pytest.raises(StoreError, match=r"^failed to read `gs://envd-down/p/k/v` after 3 attempts: "),
        ):  # fmt: skip
            store.get("k/v")
    retries = [r.getMessage() for r in caplog.records if r.name == "envd.store"]
    assert len(retries) == 2 and all(r.startswith("retrying read `gs://") for r in retries)
