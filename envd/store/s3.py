"""`S3Store`: the store in an S3 bucket (or MinIO, R2, an emulator) through conditional writes."""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Callable, Set
from contextlib import closing
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar, cast
from urllib.parse import urlsplit

import boto3  # type: ignore[import-untyped, unused-ignore]
import botocore.exceptions as sdk  # type: ignore[import-untyped, unused-ignore]
from botocore.config import Config  # type: ignore[import-untyped, unused-ignore]

from envd.errors import InvalidKeyError, PreconditionFailed, StoreError
from envd.redaction import refuse_store_credentials
from envd.store.base import ObjectInfo, check_key, check_prefix
from envd.store.retry import DEFAULT_ATTEMPTS, DEFAULT_BASE_DELAY, with_retries

T = TypeVar("T")
log = logging.getLogger("envd.store")

# Files under one part go up in one conditional PUT; larger ones part by part, so at most one
# part is ever in memory. S3 allows 10,000 parts, so huge files get larger parts.
PART_SIZE = 8 * 1024 * 1024
MAX_PARTS = 10_000
COPY_CHUNK = 1024 * 1024

_NONE: frozenset[str] = frozenset()
_EXISTS = frozenset({"PreconditionFailed"})
_CONFLICT = frozenset({"ConditionalRequestConflict"})
_ABSENT = frozenset({"NoSuchKey", "404", "NotFound"})
_UNSUPPORTED = frozenset({"NotImplemented", "501"})
# 5xx and 429 are transient too; these codes also come with a 400 or 403.
_THROTTLED = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout"})
_CREDENTIAL_CODES = frozenset(
    "AccessDenied AllAccessDisabled InvalidAccessKeyId SignatureDoesNotMatch ExpiredToken "
    "InvalidToken TokenRefreshRequired NoCredentialsError PartialCredentialsError".split()
)
_CREDENTIAL_HINT = "check the AWS credentials and that they may read, write and list the bucket"
_UNSUPPORTED_HINT = "envd needs an S3 service with conditional writes (`If-None-Match`, `If-Match`)"
_ENDPOINT_HINT = "check the store URL and the S3 endpoint (`AWS_ENDPOINT_URL`) and region"
_URL_HINT = "write the store URL as `s3://bucket` or `s3://bucket/some/prefix`"

# envd retries in one place (`with_retries`); SDK retries on top would multiply the attempts.
_CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"})


class S3Client(Protocol):
    """The part of boto3's S3 client this backend calls (boto3 ships no type hints)."""

    def put_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def get_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def head_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def head_bucket(self, **kwargs: Any) -> dict[str, Any]: ...
    def delete_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]: ...
    def create_multipart_upload(self, **kwargs: Any) -> dict[str, Any]: ...
    def upload_part(self, **kwargs: Any) -> dict[str, Any]: ...
    def complete_multipart_upload(self, **kwargs: Any) -> dict[str, Any]: ...
    def abort_multipart_upload(self, **kwargs: Any) -> dict[str, Any]: ...


def new_client(endpoint_url: str | None = None) -> S3Client:
    """An S3 client configured by the SDK's standard chain: env vars (`AWS_ENDPOINT_URL` points
    it at MinIO, R2 or an emulator), profiles, instance roles. `endpoint_url` overrides."""
    session = boto3.session.Session()  # the default session is not safe to share across threads
    return cast(S3Client, session.client("s3", endpoint_url=endpoint_url, config=_CONFIG))


class S3Store:
    """A store under `prefix` in `bucket`; `url` is `s3://bucket/prefix`.

    Immutable objects are created with `If-None-Match: *`; compare-and-swap sends
    `If-Match: <etag>`, and the version of an object is its ETag.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: S3Client | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
        base_delay: float = DEFAULT_BASE_DELAY,
    ) -> None:
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        _check_location(self.url, bucket, self._prefix)
        self._root = f"{self._prefix}/" if self._prefix else ""
        self._client_value = client
        self._client_lock = threading.Lock()
        self._attempts = attempts
        self._base_delay = base_delay
        self._bucket_checked = False

    @classmethod
    def from_url(cls, url: str) -> S3Store:
        """`s3://bucket` or `s3://bucket/some/prefix` (a trailing `/` is dropped)."""
        refuse_store_credentials(url, _URL_HINT)
        parts = urlsplit(url)
        if parts.scheme.lower() != "s3":
            raise StoreError(f"failed to open store `{url}`: not an `s3://` URL", _URL_HINT)
        if parts.query or parts.fragment:
            why = "an S3 store URL takes no `?` or `#` part"
            raise StoreError(f"failed to open store `{url}`: {why}", _URL_HINT)
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        return cls(parts.netloc, path.rstrip("/"))

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def url(self) -> str:
        return f"s3://{self._bucket}/{self._prefix}" if self._prefix else f"s3://{self._bucket}"

    @property
    def _client(self) -> S3Client:
        # Built on first use: resolving credentials may query an instance-metadata endpoint,
        # which opening a store (or parsing its URL) must not wait for.
        with self._client_lock:
            if self._client_value is None:
                self._client_value = new_client()
            return self._client_value

    def put_if_absent(self, key: str, data: bytes) -> bool:
        try:
            self._call("write", key, "put_object", _EXISTS, Body=data, IfNoneMatch="*")
        except sdk.ClientError:
            return False
        return True

    def get(self, key: str) -> bytes | None:
        found = self.get_versioned(key)
        return None if found is None else found[0]

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        name = self._name(key)

        def read() -> tuple[bytes, str]:
            response = self._client.get_object(Bucket=self._bucket, Key=name)
            with closing(response["Body"]) as body:  # its own `with` yields the raw stream
                data: bytes = body.read()
            return data, _version(response)

        try:
            return self._run("read", key, read, expected=_ABSENT)
        except sdk.ClientError:
            return None

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            response = self._call("stat", key, "head_object", expected=_ABSENT)
        except sdk.ClientError:
            # A HEAD 404 has no body, so it cannot say whether the key or the bucket is missing.
            self._check_bucket("stat", key)
            return None
        modified = response.get("LastModified")
        return ObjectInfo(
            key=key,
            size=int(response["ContentLength"]),
            version=_version(response),
            modified=None if modified is None else modified.timestamp(),
        )

    def list(self, prefix: str) -> list[str]:
        check_prefix(prefix)
        request: dict[str, Any] = {"Bucket": self._bucket, "Prefix": self._root + prefix}
        keys: list[str] = []
        while True:
            page = self._run("list", prefix, lambda: self._client.list_objects_v2(**request))
            for item in page.get("Contents", []):
                key = str(item["Key"])[len(self._root) :]
                if _is_key(key):  # skips objects no store call could address (`dir/` markers)
                    keys.append(key)
            if not page.get("IsTruncated"):
                return sorted(keys)
            request["ContinuationToken"] = page["NextContinuationToken"]

    def compare_and_swap(self, key: str, expected_version: str | None, data: bytes) -> str:
        if expected_version is None:
            condition = {"IfNoneMatch": "*"}
        else:
            condition = {"IfMatch": f'"{expected_version}"'}
        try:
            # S3 answers If-Match on an absent key with 404, and a conditional write racing
            # another one to the same key with 409.
            conflicts = _EXISTS | _CONFLICT | _ABSENT
            response = self._call(
                "swap", key, "put_object", Body=data, expected=conflicts, **condition
            )
        except sdk.ClientError as err:
            raise self._conflict(key, expected_version, _code(err)) from err
        return _version(response)

    def delete(self, key: str) -> None:
        self._call("delete", key, "delete_object")

    def put_file_if_absent(self, key: str, path: Path) -> bool:
        check_key(key)
        with path.open("rb") as source:  # a missing source is the caller's OSError, not ours
            size = os.fstat(source.fileno()).st_size
            if size < PART_SIZE:
                return self._put_small(key, source)
            if self.stat(key) is not None:
                return False  # skips uploading a large archive that is already there
            return self._put_multipart(key, source, _part_size(size))

    def download(self, key: str, dest: Path) -> bool:
        name = self._name(key)
        temp = dest.with_name(f".{dest.name}.{secrets.token_hex(8)}.tmp")

        def fetch() -> None:
            response = self._client.get_object(Bucket=self._bucket, Key=name)
            with closing(response["Body"]) as body, temp.open("wb") as out:  # a retry starts over
                for chunk in body.iter_chunks(COPY_CHUNK):
                    out.write(chunk)

        try:
            self._run("read", key, fetch, expected=_ABSENT)
            os.replace(temp, dest)
        except sdk.ClientError:
            return False
        except OSError as err:
            raise StoreError(
                f"failed to download `{self._object_url(key)}` to `{dest}`: {err.strerror or err}",
                hint="check that the destination folder exists, is writable, and has free space",
            ) from err
        finally:
            temp.unlink(missing_ok=True)
        return True

    def _put_small(self, key: str, source: BinaryIO) -> bool:
        name = self._name(key)

        def put() -> dict[str, Any]:
            source.seek(0)  # a retried attempt sends the file from the start again
            return self._client.put_object(
                Bucket=self._bucket, Key=name, Body=source, IfNoneMatch="*"
            )

        try:
            self._run("write", key, put, _EXISTS)
        except sdk.ClientError:
            return False
        return True

    def _put_multipart(self, key: str, source: BinaryIO, part_size: int) -> bool:
        # boto3's managed transfer (`upload_file`) refuses `IfNoneMatch`, so the parts go up
        # through the low-level calls; the condition is checked when the upload completes.
        upload_id = str(self._call("write", key, "create_multipart_upload")["UploadId"])
        completed = False
        try:
            parts: list[dict[str, Any]] = []
            while chunk := source.read(part_size):
                number = len(parts) + 1
                part = self._call(
                    "write", key, "upload_part", UploadId=upload_id, PartNumber=number, Body=chunk
                )
                parts.append({"PartNumber": number, "ETag": part["ETag"]})
            try:
                self._call(
                    "write",
                    key,
                    "complete_multipart_upload",
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                    IfNoneMatch="*",
                    expected=_EXISTS | _CONFLICT,
                )
            except sdk.ClientError as err:
                if _code(err) in _CONFLICT and self.stat(key) is None:
                    why = "a concurrent write to the same key conflicted and did not finish"
                    raise StoreError(
                        f"failed to write `{self._object_url(key)}`: {why}", "retry the upload"
                    ) from err
                return False
            completed = True
            return True
        finally:
            if not completed:  # any failure, the precondition included, leaves no parts behind
                self._abort(key, upload_id)

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self._call("abort the upload of", key, "abort_multipart_upload", UploadId=upload_id)
        except StoreError as err:  # never masks the failure that led here
            log.warning("left multipart upload `%s` behind (a bucket lifecycle rule can "
                        "expire it): %s", upload_id, err)  # fmt: skip

    def _check_bucket(self, verb: str, key: str) -> None:
        """Raise if the bucket is missing; checked once per store, on its first miss."""
        if self._bucket_checked:
            return
        bucket = {"Bucket": self._bucket}
        try:
            self._run(verb, key, lambda: self._client.head_bucket(**bucket), expected=_ABSENT)
        except sdk.ClientError as err:
            why = f"NoSuchBucket: the bucket `{self._bucket}` does not exist"
            cause = f"failed to {verb} `{self._object_url(key)}`: {why}"
            raise StoreError(cause, self._hint("NoSuchBucket")) from err
        self._bucket_checked = True

    def _call(
        self, verb: str, key: str, method: str, expected: Set[str] = _NONE, **request: Any
    ) -> dict[str, Any]:
        """Client `method` on `key`'s object, through `_run`."""
        name = self._name(key)

        def call() -> Any:
            return getattr(self._client, method)(Bucket=self._bucket, Key=name, **request)

        return cast(dict[str, Any], self._run(verb, key, call, expected))

    def _run(
        self, verb: str, key: str, operation: Callable[[], T], expected: Set[str] = _NONE
    ) -> T:
        """`operation` with retries; a ClientError whose code is `expected` propagates for the
        caller to read, every other SDK failure becomes a StoreError naming the object.

        A 409 (another conditional write to the key in flight) is retried unless expected: the
        next attempt sees the winner's object, or finds the key free if that write failed."""
        retry_conflicts = not (expected & _CONFLICT)
        try:
            return with_retries(
                operation,
                what=f"{verb} `{self._object_url(key)}`",
                is_transient=lambda err: (
                    _is_transient(err) or (retry_conflicts and _is_conflict(err))
                ),
                attempts=self._attempts,
                base_delay=self._base_delay,
            )
        except (sdk.ClientError, sdk.BotoCoreError) as err:
            if isinstance(err, sdk.ClientError) and _code(err) in expected:
                raise
            raise self._error(verb, key, err) from err

    def _name(self, key: str) -> str:
        return self._root + check_key(key)

    def _object_url(self, key: str) -> str:
        return f"s3://{self._bucket}/{self._root}{key}"

    def _error(self, verb: str, key: str, err: Exception) -> StoreError:
        if isinstance(err, sdk.ClientError):
            code, message = _code(err), err.response.get("Error", {}).get("Message")
            cause = f"{code}: {message}" if message else code
        else:
            code, cause = type(err).__name__, str(err)
        return StoreError(f"failed to {verb} `{self._object_url(key)}`: {cause}", self._hint(code))

    def _hint(self, code: str) -> str:
        if code == "NoSuchBucket":
            return f"create the bucket `{self._bucket}` or fix the store URL `{self.url}`"
        if code in _CREDENTIAL_CODES:
            return _CREDENTIAL_HINT
        return _UNSUPPORTED_HINT if code in _UNSUPPORTED else _ENDPOINT_HINT

    def _conflict(self, key: str, expected: str | None, code: str) -> PreconditionFailed:
        found = "`absent`" if code in _ABSENT else "another version"
        if code in _CONFLICT:
            found = "a concurrent write in progress"
        return PreconditionFailed(
            f"failed to swap `{key}` in store `{self.url}`: expected version "
            f"`{expected or 'absent'}`, found {found}",
            hint="another writer changed the object; read it again and retry",
        )


def _check_location(url: str, bucket: str, prefix: str) -> None:
    if not bucket:
        raise StoreError(f"failed to open store `{url}`: the bucket name is empty", _URL_HINT)
    # DNS-style names, plus the `_` and capitals older buckets and S3-compatible services
    # allow; never credentials, ports or paths.
    if not all(ch.isascii() and (ch.isalnum() or ch in "-._") for ch in bucket):
        raise StoreError(
            f"failed to open store `{url}`: `{bucket}` is not a bucket name", _URL_HINT
        )
    if prefix:
        try:
            check_key(prefix)
        except InvalidKeyError as err:
            raise StoreError(f"failed to open store `{url}`: {err}", _URL_HINT) from err


def _part_size(size: int) -> int:
    needed = -(-size // MAX_PARTS)
    return max(PART_SIZE, -(-needed // COPY_CHUNK) * COPY_CHUNK)


def _version(response: dict[str, Any]) -> str:
    return str(response["ETag"]).strip('"')


def _code(err: Any) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _is_transient(err: BaseException) -> bool:
    if isinstance(err, sdk.ClientError):
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if status == 501 or _code(err) in _UNSUPPORTED:
            return False  # a service without conditional writes will not grow them on retry
        return status >= 500 or status == 429 or _code(err) in _THROTTLED
    return isinstance(err, (sdk.ConnectionError, sdk.HTTPClientError, sdk.IncompleteReadError))


def _is_conflict(err: BaseException) -> bool:
    return isinstance(err, sdk.ClientError) and _code(err) in _CONFLICT


def _is_key(key: str) -> bool:
    try:
        check_key(key)
    except InvalidKeyError:
        return False
    return True
