"""The test suite's S3, GCS and Azure emulators, started for the bench with their SDK settings."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bench.channel import ROOT

Backend = Literal["s3", "gcs", "azure"]
BACKENDS: tuple[Backend, ...] = ("s3", "gcs", "azure")
SCHEMES: dict[Backend, str] = {"s3": "s3", "gcs": "gs", "azure": "az"}
EMULATOR_NAMES: dict[Backend, str] = {"s3": "moto", "gcs": "fake-gcs-server", "azure": "Azurite"}
BUCKET = "envd-bench"  # also the Azure container: a name all three accept
TESTS = ROOT / "tests"
AZURITE_BLOB = ROOT / "node_modules" / ".bin" / "azurite-blob"


@dataclass(frozen=True, slots=True)
class Emulator:
    """A running emulator with one empty bucket, and the env vars its SDK's standard chain
    reads to find it (what envd's backends and the raw SDK calls both rely on)."""

    backend: Backend
    name: str
    bucket: str
    env: dict[str, str]


def missing(backend: Backend) -> str | None:
    """Why `backend`'s emulator cannot start here, or None if it can."""
    if backend == "azure" and (shutil.which("node") is None or not AZURITE_BLOB.exists()):
        return "Azurite is not installed (`node_modules/` or `node` missing): run `npm ci`"
    return None


@contextmanager
def start_emulator(backend: Backend, workdir: Path) -> Iterator[Emulator]:
    """Start `backend`'s emulator with the launcher the tests use, logging under `workdir`;
    the env vars match `tests/integration/test_cloud_cluster.py`'s `cloud()`."""
    workdir.mkdir(parents=True, exist_ok=True)
    name = EMULATOR_NAMES[backend]
    if backend == "s3":
        with _launcher("emulator_s3").start_moto(workdir) as moto:
            moto.create_bucket(BUCKET)
            none = str(workdir / "none")  # no profile on this machine may redirect the SDK
            yield Emulator(backend, name, BUCKET, {
                "AWS_ENDPOINT_URL": moto.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": none,
                "AWS_SHARED_CREDENTIALS_FILE": none,
            })  # fmt: skip
    elif backend == "gcs":
        with _launcher("emulator_gcs").start_fake_gcs(workdir) as gcs:
            gcs.create_bucket(BUCKET)
            yield Emulator(backend, name, BUCKET, {"STORAGE_EMULATOR_HOST": gcs.endpoint})
    else:
        reason = missing(backend)
        if reason is not None:  # the launcher would call `pytest.skip`, meant for tests only
            raise RuntimeError(f"failed to start {name}: {reason}")
        with _launcher("emulator_azure").start_azurite(workdir) as azurite:
            azurite.create_container(BUCKET)
            env = {"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string}
            yield Emulator(backend, name, BUCKET, env)


@contextmanager
def scoped_env(env: Mapping[str, str]) -> Iterator[None]:
    """Set `env` for the block and put every variable back as it was after it."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _launcher(module: str) -> Any:
    """Dev tooling reusing test tooling: the launchers live in `tests/`, which is no package,
    so they are imported by name from a `sys.path` entry (and mypy, which checks `bench`
    without `tests/`, sees them as `Any`)."""
    if str(TESTS) not in sys.path:
        sys.path.append(str(TESTS))
    return importlib.import_module(module)
