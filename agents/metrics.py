"""The agent's metrics: solve, build, fetch, transmute and upload times, bytes moved by backend,
and build outcomes, on a registry of the agent's own; the fetcher, transmuter and store that
report theirs."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Histogram

from envd.metrics import (
    SECONDS_BUCKETS,
    TRANSFER_BUCKETS,
    Children,
    new_registry,
    register_build_info,
)
from envd.store.base import ObjectInfo, Store

from .fetch import Fetched, Fetcher
from .transmute import Transmuted, Transmuter

BUILD_OUTCOMES = ("resolved", "failed", "cancelled")
# store URL scheme → backend (a bare folder is a local store too)
_STORE_BACKENDS = {"": "local", "file": "local", "s3": "s3", "gs": "gcs", "az": "azure"}
_CHANNEL_BACKENDS = {"": "file", "file": "file", "http": "http", "https": "https"}


def archive_kind(filename: str) -> str:
    """`conda` or `tar_bz2`: the archive format, as a label value."""
    return "tar_bz2" if filename.endswith(".tar.bz2") else filename.rpartition(".")[2] or "other"


def _scheme(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    return "" if len(scheme) <= 1 else scheme  # `C:\…` is a folder


class AgentMetrics:
    """One per agent. Every method is safe from any thread (archives are cached on a pool)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry or new_registry()
        register_build_info(registry, "agent")
        self._solve = Children[Histogram](Histogram(
            "envd_solve_duration_seconds", "Solves that found a solution: loading repodata and "
            "solving.", ["platform"], registry=registry, buckets=SECONDS_BUCKETS))  # fmt: skip
        self._build = Children[Histogram](Histogram(
            "envd_build_duration_seconds", "Jobs run on this agent, from lease to description "
            "written (or failure).", ["platform", "outcome"], registry=registry,
            buckets=SECONDS_BUCKETS))  # fmt: skip
        self._builds = Children[Counter](Counter(
            "envd_builds", "Jobs run on this agent, by outcome (resolved, failed, cancelled).",
            ["platform", "outcome"], registry=registry))  # fmt: skip
        self._fetch = Children[Histogram](Histogram(
            "envd_fetch_duration_seconds", "Archive downloads from channels (verified after).",
            ["kind"], registry=registry, buckets=TRANSFER_BUCKETS))  # fmt: skip
        self._fetched = Children[Counter](Counter(
            "envd_fetched_bytes", "Archive bytes downloaded, by channel backend (http, https, "
            "file).", ["backend"], registry=registry))  # fmt: skip
        self._transmute = Histogram(
            "envd_transmute_duration_seconds", "`.tar.bz2` → `.conda` transmutes, verification "
            "included.", registry=registry, buckets=TRANSFER_BUCKETS)  # fmt: skip
        self._transmuted = Counter(
            "envd_transmuted_bytes", "Bytes of the `.conda` archives transmutes made.",
            registry=registry)  # fmt: skip
        self._upload = Children[Histogram](Histogram(
            "envd_upload_duration_seconds", "Archive uploads to the store (create-only).",
            ["backend", "kind"], registry=registry, buckets=TRANSFER_BUCKETS))  # fmt: skip
        self._uploaded = Children[Counter](Counter(
            "envd_uploaded_bytes", "Archive bytes this agent stored, by store backend (local, "
            "s3, gcs, azure).", ["backend"], registry=registry))  # fmt: skip

    def solved(self, platform: str, seconds: float) -> None:
        self._solve(platform).observe(seconds)

    def built(self, platform: str, outcome: str, seconds: float) -> None:
        self._builds(platform, outcome).inc()
        self._build(platform, outcome).observe(seconds)

    def fetched(self, url: str, filename: str, size: int, seconds: float) -> None:
        self._fetch(archive_kind(filename)).observe(seconds)
        self._fetched(_CHANNEL_BACKENDS.get(_scheme(url), "other")).inc(size)

    def transmuted(self, size: int, seconds: float) -> None:
        self._transmute.observe(seconds)
        self._transmuted.inc(size)

    def uploaded(
        self, store_url: str, filename: str, size: int, seconds: float, created: bool
    ) -> None:
        """One upload; its bytes count only when it created the object (an archive another
        agent stored first is not stored twice)."""
        backend = _STORE_BACKENDS.get(_scheme(store_url), "other")
        self._upload(backend, archive_kind(filename)).observe(seconds)
        if created:
            self._uploaded(backend).inc(size)


class MeteredFetcher(Fetcher):
    """A `Fetcher` that times each archive download and counts its bytes."""

    def __init__(self, *args: Any, metrics: AgentMetrics, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = metrics

    def fetch(
        self, url: str, dest: Path, *, max_size: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Fetched:  # fmt: skip
        started = time.perf_counter()
        fetched = super().fetch(url, dest, max_size=max_size, cancel=cancel)
        self.metrics.fetched(url, dest.name, fetched.size, time.perf_counter() - started)
        return fetched


class MeteredTransmuter(Transmuter):
    """A `Transmuter` that times each transmute and counts the bytes of the `.conda` made."""

    def __init__(self, *, metrics: AgentMetrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics

    def transmute(self, source: Path, out_dir: Path) -> Transmuted:
        started = time.perf_counter()
        made = super().transmute(source, out_dir)
        self.metrics.transmuted(made.size, time.perf_counter() - started)
        return made


class MeteredStore:
    """A `Store` that times each archive upload (`put_file_if_absent`) and counts the bytes it
    stored; every other call passes straight through. (Not `Leftovers`: agents collect no
    garbage.)"""

    def __init__(self, store: Store, metrics: AgentMetrics) -> None:
        self._store = store
        self.metrics = metrics

    @property
    def url(self) -> str:
        return self._store.url

    def put_file_if_absent(self, key: str, path: Path) -> bool:
        started = time.perf_counter()
        created = self._store.put_file_if_absent(key, path)
        seconds = time.perf_counter() - started
        self.metrics.uploaded(self._store.url, path.name, path.stat().st_size, seconds, created)
        return created

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self._store.put_if_absent(key, data)

    def get(self, key: str) -> bytes | None:
        return self._store.get(key)

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        return self._store.get_versioned(key)

    def stat(self, key: str) -> ObjectInfo | None:
        return self._store.stat(key)

    def list(self, prefix: str) -> list[str]:
        return self._store.list(prefix)

    def compare_and_swap(self, key: str, expected_version: str | None, data: bytes) -> str:
        return self._store.compare_and_swap(key, expected_version, data)

    def delete(self, key: str) -> None:
        self._store.delete(key)

    def download(self, key: str, dest: Path) -> bool:
        return self._store.download(key, dest)
