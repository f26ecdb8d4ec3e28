"""The baseline for uploads: each SDK's plain upload of a file, configured by its standard chain."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import boto3  # type: ignore[import-untyped, unused-ignore]
from azure.storage.blob import ContainerClient
from google.cloud.storage import Client

from bench.emulators import Emulator


class RawUpload(Protocol):
    """Uploads a file to a key of one bucket, overwriting, with the SDK's defaults."""

    @property
    def call(self) -> str:
        """The SDK call, as the report names it."""
        ...

    def __call__(self, key: str, path: Path) -> None: ...

    def close(self) -> None: ...


class Boto3Upload:
    call = "boto3 `client.upload_file` (default transfer: multipart over 8 MiB, 10 threads)"

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self.client: Any = boto3.session.Session().client("s3")  # AWS_* env vars

    def __call__(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, key)

    def close(self) -> None:
        self.client.close()


class GcsUpload:
    call = "google-cloud-storage `blob.upload_from_filename` (default chunking)"

    def __init__(self, bucket: str) -> None:
        # What envd's `default_client` builds when STORAGE_EMULATOR_HOST is set, so both sides
        # talk to the emulator through the same kind of client.
        self.client: Any = Client.create_anonymous_client()
        self.bucket: Any = self.client.bucket(bucket)

    def __call__(self, key: str, path: Path) -> None:
        self.bucket.blob(key).upload_from_filename(str(path))

    def close(self) -> None:
        self.client.close()


class AzureUpload:
    call = "azure-storage-blob `BlobClient.upload_blob(f, overwrite=True)` (default sizes)"

    def __init__(self, container: str) -> None:
        connection = os.environ["AZURE_STORAGE_CONNECTION_STRING"]
        self.container = ContainerClient.from_connection_string(connection, container)

    def __call__(self, key: str, path: Path) -> None:
        with path.open("rb") as source:
            self.container.get_blob_client(key).upload_blob(source, overwrite=True)

    def close(self) -> None:
        self.container.close()


def raw_upload(emulator: Emulator) -> RawUpload:
    """The SDK client for `emulator`'s bucket; call inside `scoped_env(emulator.env)`."""
    if emulator.backend == "s3":
        return Boto3Upload(emulator.bucket)
    if emulator.backend == "gcs":
        return GcsUpload(emulator.bucket)
    return AzureUpload(emulator.bucket)
