"""`AzureStore`: the store in an Azure Blob Storage container (`az://container/prefix`).

Writes are conditional on the server: create-only sends `If-None-Match: *` (409 means another
writer won), compare-and-swap `If-Match: <etag>` (412: the object changed); a version is an
ETag. Large files go up as staged blocks committed by one final `Put Block List`, so a failed
upload leaves only uncommitted blocks, which no read or listing sees. The SDK retries each
request (a failed block does not restart an upload); `with_retries` repeats whole operations.
A conditional write whose response is lost and whose retry meets its own write reports a
conflict (create-only: False); callers read again, as after any lost race.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    IncompleteReadError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobClient, BlobProperties, ContainerClient, ExponentialRetry

from envd.errors import InvalidKeyError, PreconditionFailed, StoreError
from envd.redaction import refuse_store_credentials
from envd.store.base import ObjectInfo, check_key, check_prefix
from envd.store.retry import with_retries

T = TypeVar("T")

SCHEME = "az"
# Uploads over one block go up in blocks of this size, a few at a time (memory: about
# BLOCK_SIZE * TRANSFER_CONCURRENCY per upload); downloads use as many connections.
BLOCK_SIZE = 8 * 1024 * 1024
TRANSFER_CONCURRENCY = 4
CONNECTION_TIMEOUT = 10
# The SDK retries each request twice (about 1s, then 3s); `with_retries` repeats the operation.
ATTEMPTS = 3
_SDK_RETRIES = 2
_CONTAINER_NAME = re.compile(r"(?=.{3,63}$)[a-z0-9]+(?:-[a-z0-9]+)*")
_CONFIG_HINT = (
    "set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_URL (or AZURE_STORAGE_ACCOUNT) "
    "with a credential DefaultAzureCredential finds (`az login`, a managed identity, "
    "AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET)"
)
_URL_HINT = "write the store URL as `az://<container>/<optional/prefix>`"


def container_client(
    container: str, *, retry_policy: ExponentialRetry | None = None
) -> ContainerClient:
    """The SDK client for `container`, configured the standard way from the environment."""
    options: dict[str, Any] = {
        "retry_policy": retry_policy
        or ExponentialRetry(
            initial_backoff=1, increment_base=2, retry_total=_SDK_RETRIES, random_jitter_range=1
        ),
        "max_single_put_size": BLOCK_SIZE,
        "max_block_size": BLOCK_SIZE,
        "connection_timeout": CONNECTION_TIMEOUT,
    }
    connection_string = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    try:
        if connection_string:
            return ContainerClient.from_connection_string(connection_string, container, **options)
        account_url = os.environ.get("AZURE_STORAGE_ACCOUNT_URL")
        if not account_url and (account := os.environ.get("AZURE_STORAGE_ACCOUNT")):
            account_url = f"https://{account}.blob.core.windows.net"
        if not account_url:
            raise StoreError(
                f"failed to open store `{SCHEME}://{container}`: no Azure storage account is "
                "configured",
                _CONFIG_HINT,
            )
        from azure.identity import DefaultAzureCredential  # slow import; only for real Azure

        credential = DefaultAzureCredential()
        return ContainerClient(account_url, container, credential=credential, **options)
    except ValueError as err:  # a malformed connection string or account URL
        raise StoreError(
            f"failed to open store `{SCHEME}://{container}`: {err}", _CONFIG_HINT
        ) from err


def parse_url(url: str) -> tuple[str, str]:
    """`az://container/some/prefix` → (`container`, `some/prefix`); the prefix may be empty."""
    refuse_store_credentials(url, _URL_HINT)
    parts = urlsplit(url)
    if parts.scheme.lower() != SCHEME:
        raise StoreError(f"failed to open store `{url}`: not an `az://` URL", _URL_HINT)
    if parts.query or parts.fragment:
        raise StoreError(f"failed to open store `{url}`: unexpected query or fragment", _URL_HINT)
    container = parts.netloc
    if not _CONTAINER_NAME.fullmatch(container):
        raise StoreError(
            f"failed to open store `{url}`: `{container}` is not a container name",
            hint="container names are 3-63 lowercase letters, digits and single hyphens; "
            + _URL_HINT,
        )
    prefix = parts.path.removeprefix("/").removesuffix("/")
    if prefix:
        try:
            check_key(prefix)
        except InvalidKeyError as err:
            raise StoreError(
                f"failed to open store `{url}`: the prefix `{prefix}` is not a key path",
                err.hint,
            ) from err
    return container, prefix


class _LocalReadError(Exception):
    """Reading the file being uploaded failed (the cause is the OSError)."""


class _LocalFile(io.RawIOBase):
    """The file being uploaded. Its read errors must not look like network errors, as the
    OSError would if raised while the HTTP stack sends the body (and be retried)."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__()
        self._file = file

    def readable(self) -> bool:
        return True

    seekable = readable

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def read(self, size: int | None = -1) -> bytes:
        try:
            return self._file.read(-1 if size is None else size)
        except OSError as err:
            raise _LocalReadError(err.strerror or str(err)) from err


class _Transient(Exception):
    """A failure worth repeating the operation for; its text is the cleaned-up cause."""


class AzureStore:
    """A store under `prefix` in one container; `url` is `az://<container>[/<prefix>]`."""

    def __init__(
        self,
        container: ContainerClient,
        prefix: str = "",
        *,
        attempts: int = ATTEMPTS,
        base_delay: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._container = container
        self._prefix = f"{check_key(prefix)}/" if prefix else ""
        self._attempts = attempts
        self._base_delay = base_delay
        self._sleep = sleep

    @classmethod
    def from_url(cls, url: str) -> AzureStore:
        container, prefix = parse_url(url)
        return cls(container_client(container), prefix)

    @property
    def url(self) -> str:
        return f"{SCHEME}://{self._container.container_name}/{self._prefix}".removesuffix("/")

    def close(self) -> None:
        """Close the SDK client's connections."""
        self._container.close()

    def put_if_absent(self, key: str, data: bytes) -> bool:
        blob = self._blob(key)
        return self._call("write", key, lambda: _create(blob, data, len(data)))

    def get(self, key: str) -> bytes | None:
        found = self.get_versioned(key)
        return None if found is None else found[0]

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        blob = self._blob(key)

        def read() -> tuple[bytes, str] | None:
            try:
                # Chunks after the first are read `If-Match` the first one's ETag.
                downloader = blob.download_blob()
            except ResourceNotFoundError as err:
                _raise_unless_blob_missing(err)
                return None
            return downloader.readall(), str(downloader.properties.etag)

        return self._call("read", key, read)

    def stat(self, key: str) -> ObjectInfo | None:
        blob = self._blob(key)
        props = self._call("stat", key, lambda: _properties(blob))
        if props is None:
            return None
        when = props.last_modified
        return ObjectInfo(
            key=key,
            size=props.size,
            version=str(props.etag),
            modified=None if when is None else when.timestamp(),
        )

    def list(self, prefix: str) -> list[str]:
        check_prefix(prefix)

        def names() -> list[str]:
            found = self._container.list_blob_names(name_starts_with=self._prefix + prefix)
            return sorted(name[len(self._prefix) :] for name in found)

        return self._call("list", prefix, names)

    def compare_and_swap(self, key: str, expected_version: str | None, data: bytes) -> str:
        blob = self._blob(key)

        def swap() -> str:
            try:
                if expected_version is None:
                    result = blob.upload_blob(data, length=len(data), overwrite=False)
                else:
                    result = blob.upload_blob(
                        data,
                        length=len(data),
                        overwrite=True,
                        etag=expected_version,
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError) as err:
                raise self._conflict(key, expected_version) from err
            except ResourceNotFoundError as err:  # If-Match on an absent blob, on some servers
                _raise_unless_blob_missing(err)
                raise self._conflict(key, expected_version) from err
            return str(result["etag"])

        return self._call("swap", key, swap)

    def delete(self, key: str) -> None:
        blob = self._blob(key)

        def delete() -> None:
            try:
                blob.delete_blob()
            except ResourceNotFoundError as err:
                _raise_unless_blob_missing(err)

        self._call("delete", key, delete)

    def put_file_if_absent(self, key: str, path: Path) -> bool:
        self._blob(key)
        with path.open("rb") as source:  # a missing source is the caller's OSError, not ours
            return self._publish_stream(key, source, os.fstat(source.fileno()).st_size)

    def _publish_stream(self, key: str, source: BinaryIO, size: int) -> bool:
        blob = self._blob(key)
        local = cast(BinaryIO, _LocalFile(source))

        def upload() -> bool:
            if _properties(blob) is not None:
                return False  # skips uploading an archive that is already there
            local.seek(0)
            return _create(blob, local, size)

        try:
            return self._call("write", key, upload)
        except _LocalReadError as err:  # nothing was committed: blocks stay uncommitted
            raise StoreError(
                f"failed to write `{self._where(key)}`: reading the local file failed: {err}",
                hint="check that the local file is readable",
            ) from err.__cause__

    def download(self, key: str, dest: Path) -> bool:
        blob = self._blob(key)
        temp = dest.with_name(f".{dest.name}.{secrets.token_hex(8)}.tmp")

        def fetch() -> bool:
            try:
                downloader = blob.download_blob(max_concurrency=TRANSFER_CONCURRENCY)
            except ResourceNotFoundError as err:
                _raise_unless_blob_missing(err)
                return False
            with temp.open("wb") as out:  # truncates what a failed attempt left
                downloader.readinto(out)
            return True

        try:
            found = self._call("read", key, fetch)
            if found:
                os.replace(temp, dest)
        except OSError as err:
            raise StoreError(
                f"failed to download `{self._where(key)}` to `{dest}`: {err.strerror or err}",
                hint="check that the destination folder exists, is writable, and has free space",
            ) from err
        finally:
            temp.unlink(missing_ok=True)
        return found

    def _blob(self, key: str) -> BlobClient:
        return self._container.get_blob_client(self._prefix + check_key(key))

    def _where(self, key: str) -> str:
        return f"{SCHEME}://{self._container.container_name}/{self._prefix}{key}"

    def _call(self, verb: str, key: str, operation: Callable[[], T]) -> T:
        """Run one store operation: transient SDK errors are retried, others become StoreError."""

        def attempt() -> T:
            try:
                return operation()
            except AzureError as err:
                if _is_transient(err):
                    raise _Transient(_cause(err)) from err
                raise self._error(verb, key, err) from err

        return with_retries(
            attempt,
            what=f"{verb} `{self._where(key)}`",
            is_transient=lambda err: isinstance(err, _Transient),
            attempts=self._attempts,
            base_delay=self._base_delay,
            sleep=self._sleep,
        )

    def _error(self, verb: str, key: str, err: AzureError) -> StoreError:
        message = f"failed to {verb} `{self._where(key)}`: {_cause(err)}"
        code = str(getattr(err, "error_code", "") or "")
        status = getattr(err, "status_code", None)
        if code == "ContainerNotFound":
            name = self._container.container_name
            hint = f"create the container `{name}` (`az storage container create --name {name}`)"
        elif status in (401, 403) or "Authentication" in code or "Authorization" in code:
            hint = f"check the credentials and their access to the container; {_CONFIG_HINT}"
        else:
            hint = f"check the store URL and the account settings; {_CONFIG_HINT}"
        return StoreError(message, hint)

    def _conflict(self, key: str, expected: str | None) -> PreconditionFailed:
        found = "the object exists" if expected is None else "the object changed or was deleted"
        return PreconditionFailed(
            f"failed to swap `{key}` in store `{self.url}`: expected version "
            f"`{expected or 'absent'}`, but {found}",
            hint="another writer changed the object; read it again and retry",
        )


def _create(blob: BlobClient, data: bytes | BinaryIO, size: int) -> bool:
    """Create-only upload (`If-None-Match: *`, on the final commit for block uploads)."""
    try:
        blob.upload_blob(data, length=size, overwrite=False, max_concurrency=TRANSFER_CONCURRENCY)
    except ResourceExistsError:
        return False
    return True


def _properties(blob: BlobClient) -> BlobProperties | None:
    try:
        return blob.get_blob_properties()
    except ResourceNotFoundError as err:
        _raise_unless_blob_missing(err)
        return None


def _raise_unless_blob_missing(err: ResourceNotFoundError) -> None:
    """An absent blob reads as absent; a missing container is an error (StoreError later)."""
    if str(getattr(err, "error_code", "") or "") == "ContainerNotFound":
        raise err


def _is_transient(err: AzureError) -> bool:
    if isinstance(err, ServiceRequestError | ServiceResponseError | IncompleteReadError):
        return True
    status = err.status_code if isinstance(err, HttpResponseError) else None
    return status is not None and (status in (408, 429) or status >= 500)


def _cause(err: AzureError) -> str:
    """The first line of the SDK's message (the rest is request ids and XML), and its code."""
    lines = str(err.message or err).strip().splitlines()
    text = lines[0] if lines else type(err).__name__
    # urllib3 may start with `<HTTPConnection object at 0x…>: `; a HEAD error has no body, so
    # the SDK wraps the reason phrase as `Operation returned an invalid status '<reason>'`.
    text = re.sub(r"^<[^>]*>: ", "", text)
    text = re.sub(r"^Operation returned an invalid status '(.*)'$", r"\1", text)
    code = str(getattr(err, "error_code", "") or "")
    return f"{text} ({code})" if code and code not in text else text
