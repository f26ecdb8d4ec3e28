"""`GcsStore`: the store in a Google Cloud Storage bucket, made safe by generation preconditions.

An object's version is its generation, which GCS changes on every write. Create-only writes send
`if_generation_match=0` and compare-and-swap sends the expected generation, so GCS itself picks
exactly one winner among racing writers. Files above the SDK's single-request limit (8 MiB) go
through its resumable upload, one chunk in memory at a time; an unfinished upload never becomes
an object. Every call runs under `with_retries` with the SDK's own retries off, so transient
failures are retried once, in one place.

A 404 on a read means "absent", as the SDK's `exists()` reads it: GCS answers a missing bucket
with the same status, so a missing bucket first shows up as an error on a write or a `list`.
A write retried after a lost response can find its own object and report it as someone else's
(`False`, or `PreconditionFailed`); callers already treat both as "another writer won".
"""

from __future__ import annotations

import http
import http.client
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import requests
import urllib3
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud.storage import Blob, Client
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

from envd.errors import InvalidKeyError, PreconditionFailed, StoreError
from envd.redaction import refuse_store_credentials
from envd.store.base import ObjectInfo, check_key, check_prefix
from envd.store.retry import DEFAULT_ATTEMPTS, DEFAULT_BASE_DELAY, with_retries

T = TypeVar("T")
SCHEME = "gs"
EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
# The SDK uploads files up to this size in one request and larger ones as a resumable upload.
SINGLE_REQUEST_LIMIT = 8 * 1024 * 1024
# Bytes per resumable-upload request (and held in memory); GCS wants a multiple of 256 KiB.
UPLOAD_CHUNK = 16 * 1024 * 1024
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    http.client.BadStatusLine,
    http.client.IncompleteRead,
    http.client.ResponseNotReady,
    urllib3.exceptions.PoolError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.SSLError,
    urllib3.exceptions.TimeoutError,
    auth_exceptions.TransportError,
)
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_URL_HINT = "write the store URL as `gs://bucket` or `gs://bucket/prefix`"
_ENDPOINT_HINT = f"check the endpoint (`{EMULATOR_ENV}` when set) and the network"
_CREDENTIALS_HINT = (
    "envd uses Application Default Credentials: run `gcloud auth application-default login` "
    f"or set GOOGLE_APPLICATION_CREDENTIALS; set {EMULATOR_ENV} to use an emulator"
)


class GcsStore:
    """A store under `prefix` in one bucket; `url` is `gs://bucket/prefix`."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Client | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
        base_delay: float = DEFAULT_BASE_DELAY,
        upload_chunk: int = UPLOAD_CHUNK,
    ) -> None:
        self._bucket_name = _check_bucket(bucket)
        self._prefix = _check_store_prefix(bucket, prefix)
        self._client = client if client is not None else default_client(self.url)
        self._bucket = self._client.bucket(bucket)
        self._attempts = attempts
        self._base_delay = base_delay
        self._upload_chunk = upload_chunk

    @classmethod
    def from_url(cls, url: str) -> GcsStore:
        """`gs://bucket` or `gs://bucket/prefix`, with a client from `default_client`."""
        refuse_store_credentials(url, _URL_HINT)
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() != SCHEME:
            raise StoreError(f"failed to open store `{url}`: not a `gs://` URL", _URL_HINT)
        bucket, _, prefix = rest.partition("/")
        return cls(bucket, prefix.rstrip("/"))

    @property
    def url(self) -> str:
        root = f"{SCHEME}://{self._bucket_name}"
        return f"{root}/{self._prefix}" if self._prefix else root

    @property
    def bucket(self) -> str:
        return self._bucket_name

    @property
    def prefix(self) -> str:
        return self._prefix

    def put_if_absent(self, key: str, data: bytes) -> bool:
        blob = self._blob(key)

        def put() -> bool:
            try:
                blob.upload_from_string(data, if_generation_match=0, retry=None)
            except api_exceptions.PreconditionFailed:
                return False
            return True

        return self._run("write", key, put)

    def get(self, key: str) -> bytes | None:
        versioned = self.get_versioned(key)
        return None if versioned is None else versioned[0]

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        blob = self._blob(key)

        def read() -> tuple[bytes, str] | None:
            try:
                # One request: the bytes and the generation header describe the same write.
                data: bytes = blob.download_as_bytes(retry=None)
            except api_exceptions.NotFound:
                return None
            return data, self._version_of(blob, key)

        return self._run("read", key, read)

    def stat(self, key: str) -> ObjectInfo | None:
        name = self._name(check_key(key))

        def read() -> ObjectInfo | None:
            blob = self._bucket.get_blob(name, retry=None)
            if blob is None:
                return None
            when = blob.updated or blob.time_created
            return ObjectInfo(
                key=key,
                size=int(blob.size),
                version=self._version_of(blob, key),
                modified=None if when is None else when.timestamp(),
            )

        return self._run("stat", key, read)

    def list(self, prefix: str) -> list[str]:
        check_prefix(prefix)
        base = self._name("")

        def read() -> list[str]:
            # Consumed here, inside the retried call, so a failed page restarts the listing.
            blobs = self._client.list_blobs(self._bucket, prefix=base + prefix, retry=None)
            return [blob.name for blob in blobs]

        names = self._run("list", prefix, read)
        # Names that are not keys (a console's `folder/` placeholder) are not objects of ours.
        return sorted(name[len(base) :] for name in names if _is_key(name[len(base) :]))

    def compare_and_swap(self, key: str, expected_version: str | None, data: bytes) -> str:
        blob = self._blob(key)
        generation = 0 if expected_version is None else _generation(expected_version)
        if generation is None:  # not a generation this store handed out: it cannot match
            raise self._conflict(key, expected_version)

        def swap() -> str | None:
            try:
                blob.upload_from_string(data, if_generation_match=generation, retry=None)
            except api_exceptions.PreconditionFailed:
                return None
            return self._version_of(blob, key)

        version = self._run("swap", key, swap)
        if version is None:
            raise self._conflict(key, expected_version)
        return version

    def delete(self, key: str) -> None:
        blob = self._blob(key)

        def remove() -> None:
            try:
                blob.delete(retry=None)
            except api_exceptions.NotFound:
                pass

        self._run("delete", key, remove)

    def put_file_if_absent(self, key: str, path: Path) -> bool:
        blob = self._blob(key, chunk_size=self._upload_chunk)
        with path.open("rb") as source:  # a missing source is the caller's OSError, not ours
            size = os.fstat(source.fileno()).st_size
            if size > SINGLE_REQUEST_LIMIT and self.stat(key) is not None:
                return False  # skips uploading an archive that is already there

            def upload() -> bool:
                source.seek(0)
                try:
                    blob.upload_from_file(source, size=size, if_generation_match=0, retry=None)
                except api_exceptions.PreconditionFailed:
                    return False
                return True

            return self._run("upload", key, upload)

    def download(self, key: str, dest: Path) -> bool:
        blob = self._blob(key)
        temp = dest.with_name(f".{dest.name}.{secrets.token_hex(8)}.tmp")
        try:
            with temp.open("xb") as out:

                def fetch() -> bool:
                    out.seek(0)
                    out.truncate()
                    try:
                        blob.download_to_file(out, retry=None)
                    except api_exceptions.NotFound:
                        return False
                    return True

                found = self._run("download", key, fetch)
            if found:
                os.replace(temp, dest)
        except OSError as err:  # transport errors became StoreErrors in `_run`: this is local
            raise StoreError(
                f"failed to download `{self._where(key)}` to `{dest}`: {err.strerror or err}",
                hint="check that the destination folder exists, is writable, and has free space",
            ) from err
        finally:
            temp.unlink(missing_ok=True)
        return found

    def _name(self, key: str) -> str:
        return f"{self._prefix}/{key}" if self._prefix else key

    def _where(self, key: str) -> str:
        return f"{SCHEME}://{self._bucket_name}/{self._name(key)}"

    def _blob(self, key: str, chunk_size: int | None = None) -> Blob:
        return self._bucket.blob(self._name(check_key(key)), chunk_size=chunk_size)

    def _run(self, verb: str, key: str, operation: Callable[[], T]) -> T:
        """Run one SDK call under `with_retries`; permanent failures become a StoreError."""
        where = self._where(key)
        try:
            return with_retries(
                operation,
                what=f"{verb} `{where}`",
                is_transient=is_transient,
                attempts=self._attempts,
                base_delay=self._base_delay,
            )
        except api_exceptions.GoogleAPICallError as err:
            raise StoreError(f"failed to {verb} `{where}`: {_cause(err)}", self._hint(err)) from err
        except auth_exceptions.GoogleAuthError as err:
            raise StoreError(f"failed to {verb} `{where}`: {err}", _CREDENTIALS_HINT) from err
        except DataCorruption as err:  # not retried: a finished upload may already be stored
            raise StoreError(
                f"failed to {verb} `{where}`: the bytes do not match their checksum: {err}",
                hint="retry; if it persists, compare the object in the bucket with its source",
            ) from err
        except (InvalidResponse, requests.RequestException) as err:
            raise StoreError(f"failed to {verb} `{where}`: {err}", _ENDPOINT_HINT) from err

    def _version_of(self, blob: Blob, key: str) -> str:
        if blob.generation is None:
            raise StoreError(
                f"failed to read the generation of `{self._where(key)}`: the response had none",
                hint="the endpoint does not behave like Google Cloud Storage; check the store URL",
            )
        return str(blob.generation)

    def _hint(self, err: api_exceptions.GoogleAPICallError) -> str:
        if err.code == http.HTTPStatus.NOT_FOUND:
            return f"check that bucket `{self._bucket_name}` exists"
        if err.code in (http.HTTPStatus.UNAUTHORIZED, http.HTTPStatus.FORBIDDEN):
            return (
                f"the credentials may not use objects in bucket `{self._bucket_name}` "
                f"(they need `roles/storage.objectUser` or similar); {_CREDENTIALS_HINT}"
            )
        return f"check the store URL `{self.url}` and the bucket's configuration"

    def _conflict(self, key: str, expected: str | None) -> PreconditionFailed:
        found = "an existing object" if expected is None else "another version or none"
        return PreconditionFailed(
            f"failed to swap `{key}` in store `{self.url}`: expected version "
            f"`{expected or 'absent'}`, found {found}",
            hint="another writer changed the object; read it again and retry",
        )


def default_client(url: str) -> Client:
    """A client from the SDK's standard configuration: the emulator `STORAGE_EMULATOR_HOST`
    names, with the SDK's anonymous client (no credentials, no project), else Application
    Default Credentials."""
    if os.environ.get(EMULATOR_ENV):
        return Client.create_anonymous_client()
    try:
        # Object calls name their bucket, so no project is needed (project=None skips the
        # SDK's search for one, which fails where credentials carry none).
        return Client(project=None)
    except auth_exceptions.DefaultCredentialsError as err:
        raise StoreError(
            f"failed to open store `{url}`: no Google Cloud credentials: {err}", _CREDENTIALS_HINT
        ) from err


def is_transient(err: BaseException) -> bool:
    """Whether a failed call may succeed if repeated: 408, 429, 5xx, and dropped connections
    (the cases the SDK's own default retry covers)."""
    if isinstance(err, _TRANSIENT_TYPES):
        return True
    if isinstance(err, api_exceptions.GoogleAPICallError):
        return err.code in _RETRYABLE_STATUS
    if isinstance(err, InvalidResponse):
        return getattr(err.response, "status_code", None) in _RETRYABLE_STATUS
    return False


def _check_bucket(bucket: str) -> str:
    if not _BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
        raise StoreError(
            f"failed to open store `{SCHEME}://{bucket}`: `{bucket}` is not a bucket name",
            hint="bucket names are 3-222 lowercase letters, digits, `-`, `_` and `.`, "
            "starting and ending with a letter or digit",
        )
    return bucket


def _check_store_prefix(bucket: str, prefix: str) -> str:
    if not prefix:
        return prefix
    try:
        return check_key(prefix)
    except InvalidKeyError as err:
        raise StoreError(
            f"failed to open store `{SCHEME}://{bucket}/{prefix}`: `{prefix}` is not a prefix",
            hint=f"{_URL_HINT}; the prefix follows the rules for keys: {err.hint}",
        ) from err


def _generation(version: str) -> int | None:
    if version.isascii() and version.isdigit() and int(version) > 0:
        return int(version)
    return None


def _is_key(name: str) -> bool:
    try:
        check_key(name)
    except InvalidKeyError:
        return False
    return True


def _cause(err: api_exceptions.GoogleAPICallError) -> str:
    """`HTTP 404 Not Found: <the server's message>` without the request line the SDK adds."""
    status = f"HTTP {err.code}"
    try:
        status += f" {http.HTTPStatus(err.code or 0).phrase}"
    except ValueError:
        pass
    detail = _server_message(err.response)
    return f"{status}: {detail}" if detail else status


def _server_message(response: object) -> str:
    """The `error.message` of a JSON error body, if the response has one."""
    if not isinstance(response, requests.Response):
        return ""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else ""
