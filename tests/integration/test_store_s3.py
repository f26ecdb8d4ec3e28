"""S3Store against a real moto server: the store conformance suite, plus what only S3 can show."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped, unused-ignore]

from envd.errors import PreconditionFailed, StoreError
from envd.store.base import Store
from envd.store.s3 import PART_SIZE, S3Client, S3Store, new_client

# The suite and the emulator live beside the test folders; spawned racers inherit this entry.
_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from emulator_s3 import CREDENTIALS, MotoServer, start_moto  # noqa: E402
from store_conformance import (  # noqa: E402
    StoreConformance,
    payload,
    race_put,
    race_swap,
    run_racers,
)

pytestmark = pytest.mark.integration
_buckets = itertools.count()
Hook = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server for the module, named by the env vars every store (and every spawned
    racer) reads through the SDK's standard chain; the previous environment comes back after."""
    workdir = tmp_path_factory.mktemp("moto")
    with start_moto(workdir) as server, pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ENDPOINT_URL", server.endpoint)
        for name, value in CREDENTIALS.items():
            env.setenv(name, value)
        # Nothing from the developer's own AWS setup may reach the tests.
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.delenv(name, raising=False)
        env.setenv("AWS_CONFIG_FILE", str(workdir / "no-config"))
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(workdir / "no-credentials"))
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield server


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    name = f"envd-test-{next(_buckets)}"
    moto.create_bucket(name)
    return name


class TestS3Conformance(StoreConformance):
    @pytest.fixture
    def store(self, bucket: str) -> Store:
        return S3Store.from_url(f"s3://{bucket}/team/envd")

    def test_racing_put_if_absent_has_exactly_one_winner(self, store: Store) -> None:
        """Best effort on S3: moto checks `If-None-Match` and then writes, without a lock, so
        racers arriving together may all pass the check (real S3 lets exactly one through).
        What still holds: someone wins, and the object is whole and one winner's bytes."""
        outcomes = run_racers(race_put, type(self).opener, store.url, "pkgs/race/x.conda")
        winners = [racer for racer, won in outcomes.items() if won]
        assert winners, outcomes
        assert store.get("pkgs/race/x.conda") in [payload(racer) for racer in winners]
        assert store.list("pkgs/") == ["pkgs/race/x.conda"]

    @pytest.mark.parametrize("existing", [False, True])
    def test_racing_swaps_from_one_version_have_exactly_one_winner(
        self, store: Store, existing: bool
    ) -> None:
        """Best effort on S3, as above: moto checks `If-Match`/`If-None-Match` and then writes
        without a lock. Someone wins, and the object is one winner's bytes."""
        key = "defaults/race/linux-64.json"
        expected = store.compare_and_swap(key, None, b"start") if existing else None
        outcomes = run_racers(race_swap, type(self).opener, store.url, key, expected)
        winners = [racer for racer, won in outcomes.items() if won]
        assert winners, outcomes
        assert store.get(key) in [payload(racer) for racer in winners]
        assert store.list("defaults/") == [key]


class HookedClient:
    """A real client whose calls are recorded, and may be preceded by a test's hook (to fail
    or race them)."""

    def __init__(self, real: Any, **hooks: Hook) -> None:
        self.real = real
        self.calls: list[str] = []
        self._hooks = hooks

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.real, name)
        hook = self._hooks.get(name)

        def call(**kwargs: Any) -> Any:
            self.calls.append(name)
            if hook is not None:
                hook(kwargs)
            return method(**kwargs)

        return call


def hooked_store(bucket: str, client: HookedClient, **options: Any) -> S3Store:
    return S3Store(bucket, "envd", client=cast(S3Client, client), **options)


def client_error(code: str, status: int, operation: str) -> Exception:
    error: Exception = ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )
    return error


def big_file(path: Path, size: int = PART_SIZE + 2 * 1024 * 1024) -> Path:
    with path.open("wb") as f:
        for i in range(size // (1024 * 1024)):
            f.write(bytes([i]) * (1024 * 1024))
    return path


def uploads_in_progress(moto: MotoServer, bucket: str) -> list[Any]:
    uploads: list[Any] = moto.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return uploads


def bucket_keys(moto: MotoServer, bucket: str) -> list[str]:
    found = moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(str(item["Key"]) for item in found)


def test_a_large_file_goes_up_in_parts_once(moto: MotoServer, bucket: str, tmp_path: Path) -> None:
    client = HookedClient(moto.client())
    store = hooked_store(bucket, client)
    source = big_file(tmp_path / "big.conda")
    assert store.put_file_if_absent("pkgs/ab/big.conda", source) is True
    assert client.calls == [
        "head_object",  # already there? then nothing is uploaded
        "head_bucket",
        "create_multipart_upload",
        "upload_part",
        "upload_part",
        "complete_multipart_upload",
    ]
    client.calls.clear()
    assert store.put_file_if_absent("pkgs/ab/big.conda", source) is False
    assert client.calls == ["head_object"]
    assert store.get("pkgs/ab/big.conda") == source.read_bytes()
    assert uploads_in_progress(moto, bucket) == []


@pytest.mark.parametrize(
    ("failure", "raised"),
    [
        (client_error("AccessDenied", 403, "UploadPart"), StoreError),
        (OSError("disk went away"), OSError),
        (KeyboardInterrupt(), KeyboardInterrupt),
    ],
    ids=["permanent-error", "local-error", "interrupt"],
)
def test_a_multipart_upload_failing_part_way_leaves_nothing(
    moto: MotoServer,
    bucket: str,
    tmp_path: Path,
    failure: BaseException,
    raised: type[BaseException],
) -> None:
    def fail_on_part_2(request: dict[str, Any]) -> None:
        if request["PartNumber"] == 2:
            raise failure

    client = HookedClient(moto.client(), upload_part=fail_on_part_2)
    store = hooked_store(bucket, client)
    with pytest.raises(raised):
        store.put_file_if_absent("pkgs/ab/big.conda", big_file(tmp_path / "big.conda"))
    assert client.calls[-3:] == ["upload_part", "upload_part", "abort_multipart_upload"]
    assert bucket_keys(moto, bucket) == []
    assert uploads_in_progress(moto, bucket) == []


def test_a_multipart_upload_losing_the_race_at_completion_is_aborted(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    def racer_finishes_first(request: dict[str, Any]) -> None:
        moto.client().put_object(Bucket=bucket, Key=request["Key"], Body=b"the racer's")

    client = HookedClient(moto.client(), complete_multipart_upload=racer_finishes_first)
    store = hooked_store(bucket, client)
    assert store.put_file_if_absent("pkgs/ab/big.conda", big_file(tmp_path / "big")) is False
    assert client.calls[-2:] == ["complete_multipart_upload", "abort_multipart_upload"]
    assert store.get("pkgs/ab/big.conda") == b"the racer's"
    assert uploads_in_progress(moto, bucket) == []


def test_throttling_and_conflicts_are_retried(moto: MotoServer, bucket: str) -> None:
    failures = [
        client_error("SlowDown", 503, "PutObject"),
        client_error("ConditionalRequestConflict", 409, "PutObject"),
    ]

    def flaky(request: dict[str, Any]) -> None:
        if failures:
            raise failures.pop(0)

    client = HookedClient(moto.client(), put_object=flaky)
    store = hooked_store(bucket, client, base_delay=0.01)
    assert store.put_if_absent("pkgs/ab/x.conda", b"data") is True
    assert client.calls == ["put_object"] * 3
    assert store.get("pkgs/ab/x.conda") == b"data"


def test_a_swap_meeting_a_concurrent_write_fails_at_once(moto: MotoServer, bucket: str) -> None:
    def in_flight(request: dict[str, Any]) -> None:
        raise client_error("ConditionalRequestConflict", 409, "PutObject")

    client = HookedClient(moto.client(), put_object=in_flight)
    store = hooked_store(bucket, client, base_delay=0.01)
    with pytest.raises(PreconditionFailed) as caught:
        store.compare_and_swap("defaults/r/linux-64.json", None, b"{}")
    assert str(caught.value) == (
        f"failed to swap `defaults/r/linux-64.json` in store `s3://{bucket}/envd`: "
        "expected version `absent`, found a concurrent write in progress"
    )
    assert client.calls == ["put_object"]


def test_a_service_without_conditional_writes_is_named_not_retried(
    moto: MotoServer, bucket: str
) -> None:
    def unsupported(request: dict[str, Any]) -> None:
        raise client_error("NotImplemented", 501, "PutObject")

    client = HookedClient(moto.client(), put_object=unsupported)
    store = hooked_store(bucket, client, base_delay=0.01)
    with pytest.raises(StoreError) as caught:
        store.put_if_absent("pkgs/x", b"x")
    assert (
        str(caught.value)
        == f"failed to write `s3://{bucket}/envd/pkgs/x`: NotImplemented: NotImplemented"
    )
    assert caught.value.hint == (
        "envd needs an S3 service with conditional writes (`If-None-Match`, `If-Match`)"
    )
    assert client.calls == ["put_object"]


def test_list_follows_every_page(moto: MotoServer, bucket: str) -> None:
    def small_pages(request: dict[str, Any]) -> None:
        request["MaxKeys"] = 2

    client = HookedClient(moto.client(), list_objects_v2=small_pages)
    store = hooked_store(bucket, client)
    keys = [f"envs/r/linux-64/{i}.json" for i in range(5)]
    for key in reversed(keys):
        store.put_if_absent(key, b"{}")
    client.calls.clear()
    assert store.list("envs/") == keys
    assert client.calls == ["list_objects_v2"] * 3


def test_stores_under_sibling_prefixes_do_not_see_each_other(moto: MotoServer, bucket: str) -> None:
    root = S3Store.from_url(f"s3://{bucket}")
    team = S3Store.from_url(f"s3://{bucket}/team/envd/")
    other = S3Store.from_url(f"s3://{bucket}/team/envd2")
    team.put_if_absent("pkgs/a", b"team")
    other.put_if_absent("pkgs/a", b"other")
    # A console-made folder marker is no key any store call could address: not listed.
    moto.client().put_object(Bucket=bucket, Key="team/envd/dir/", Body=b"")
    assert team.url == f"s3://{bucket}/team/envd"
    assert team.list("") == ["pkgs/a"]
    assert team.get("pkgs/a") == b"team"
    assert root.list("") == ["team/envd/pkgs/a", "team/envd2/pkgs/a"]
    assert root.list("team/envd/") == ["team/envd/pkgs/a"]
    assert root.get("team/envd2/pkgs/a") == b"other"


def test_a_store_that_is_down_is_retried_then_named(tmp_path: Path, moto: MotoServer) -> None:
    with start_moto(tmp_path) as server:
        server.create_bucket("envd-down")
        store = S3Store(
            "envd-down", "envd", client=new_client(server.endpoint), attempts=2, base_delay=0.01
        )
        assert store.put_if_absent("defaults/r/linux-64.json", b"{}") is True
        server.stop()
        with pytest.raises(StoreError) as caught:
            store.get("defaults/r/linux-64.json")
        assert str(caught.value).startswith(
            "failed to read `s3://envd-down/envd/defaults/r/linux-64.json` after 2 attempts: "
            "Could not connect to the endpoint URL"
        )
        assert caught.value.hint == (
            "the store is unreachable or overloaded; check its endpoint and retry"
        )
        with pytest.raises(StoreError, match=r"failed to write `s3://envd-down/envd/pkgs/x`"):
            store.put_if_absent("pkgs/x", b"x")
        server.start()  # back, on the same port, but empty
        server.create_bucket("envd-down")
        assert store.put_if_absent("pkgs/x", b"x") is True


def test_a_missing_bucket_is_named(moto: MotoServer) -> None:
    store = S3Store.from_url("s3://envd-no-such-bucket/envd")
    with pytest.raises(StoreError) as caught:
        store.get("pkgs/x")
    assert str(caught.value) == (
        "failed to read `s3://envd-no-such-bucket/envd/pkgs/x`: "
        "NoSuchBucket: The specified bucket does not exist"
    )
    assert caught.value.hint == (
        "create the bucket `envd-no-such-bucket` or fix the store URL `s3://envd-no-such-bucket/envd`"
    )
    with pytest.raises(StoreError, match=r"failed to stat `s3://envd-no-such-bucket/envd/pkgs/x`"):
        store.stat("pkgs/x")
    with pytest.raises(StoreError, match="NoSuchBucket"):
        store.put_if_absent("pkgs/x", b"x")
    with pytest.raises(StoreError, match="NoSuchBucket"):
        store.list("pkgs/")


def test_download_into_a_missing_folder_fails_and_leaves_nothing(
    bucket: str, tmp_path: Path
) -> None:
    store = S3Store(bucket)
    store.put_if_absent("pkgs/x", b"x")
    with pytest.raises(StoreError, match=r"failed to download `s3://envd-test-\d+/pkgs/x` to"):
        store.download("pkgs/x", tmp_path / "missing" / "x")
    assert list(tmp_path.iterdir()) == []
